package proto

import (
	"math/bits"
	"strings"
	"testing"
)

// TestCommandsTakeEveryOption gives each command that has options all of
// them at once, with valid values: the token count must leave room for
// them. (CREATE refused size=, layout=, durable= and max_write= together
// as "too many arguments".)
func TestCommandsTakeEveryOption(t *testing.T) {
	value := map[valueKind]string{valUint: "1", valInt: "1", valPositive: "1", valBool: "1", valLayout: "raw", valID: "c1"}
	for c := CmdRead; c < numCmds; c++ {
		row := commands[c]
		if row.opts == 0 {
			continue
		}
		t.Run("cmd="+row.name, func(t *testing.T) {
			toks := []string{row.name, "r1"}
			if row.lenTok > 0 {
				toks = append(toks, "0")
			}
			if row.arg == argToken {
				toks = append(toks, "5")
			}
			if len(toks) != int(row.firstOpt) {
				t.Fatalf("%d positional tokens, firstOpt %d", len(toks), row.firstOpt)
			}
			for rest := row.opts; rest != 0; rest &= rest - 1 {
				o := options[bits.TrailingZeros16(uint16(rest))]
				toks = append(toks, o.name+"="+value[o.kind])
			}
			in := strings.Join(toks, " ") + "\n"
			if row.lenTok > 0 {
				in += "\n"
			}
			req, n, err := NewParser(DefaultLimits()).Next([]byte(in))
			if err != nil || n != len(in) || req.Cmd != c {
				t.Errorf("Next(%q) = %v, %d, %v; want %v, %d, nil", in, req.Cmd, n, err, c, len(in))
			}
		})
	}
}

// TestCreateEveryOption parses what AppendCreate writes with every option.
func TestCreateEveryOption(t *testing.T) {
	in := AppendCreate(nil, []byte("r1"), CreateOptions{Size: 4096, Layout: "raw", Durable: true, MaxWrite: 512})
	req, n, err := NewParser(DefaultLimits()).Next(in)
	if err != nil || n != len(in) {
		t.Fatalf("Next(%q) = %d, %v; want %d, nil", in, n, err, len(in))
	}
	if req.Size != 4096 || string(req.Layout) != "raw" || !req.Durable || req.MaxWrite != 512 {
		t.Errorf("Next(%q) = %s", in, fmtReq(req))
	}
}
