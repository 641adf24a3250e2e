package proto_test

import (
	"errors"
	"fmt"

	"github.com/shmgr/shmgr/internal/proto"
)

// A host's loop over one buffer of pipelined requests: each request, or
// each bad one, gets exactly one reply.
func ExampleParser_Next() {
	buf := []byte("PING\nwrite 5\r\nhello\r\nGET counter 0 4\nFROB\nSET bad! 3\nxyz\nREAD\n")
	p := proto.NewParser(proto.DefaultLimits())
	var out []byte
	for len(buf) > 0 {
		req, n, err := p.Next(buf)
		if n == 0 && err == nil {
			break // incomplete: a real host reads more
		}
		buf = buf[n:]
		var perr *proto.Error
		switch {
		case errors.As(err, &perr):
			out = proto.AppendError(out, perr.Code, perr.Error())
		case req.Cmd == proto.CmdPing:
			out = proto.AppendPong(out)
		case req.Cmd == proto.CmdWrite:
			out = proto.AppendOK(out)
		case req.Cmd == proto.CmdGet:
			out = proto.AppendValue(out, 3, []byte("0042"))
		case req.Cmd == proto.CmdRead:
			out = proto.AppendOKText(out, []byte("hello"))
		}
	}
	fmt.Printf("%s", out)
	// Output:
	// PONG
	// OK
	// VALUE 3 4
	// 0042
	// ERROR unknown_command unknown command at offset 0: "FROB"
	// ERROR bad_id invalid region id at offset 4: "bad!"
	// OK hello
}

// A client reads the replies, including the original "ERROR <message>"
// form, which has no code word.
func ExampleReplyParser_Next() {
	buf := []byte("OK 7\nVALUE 7 5\nhello\nERROR not_found no region x\nERROR Data too long\n")
	p := proto.NewReplyParser(0, 0)
	for {
		r, n, err := p.Next(buf)
		if err != nil || n == 0 {
			break
		}
		buf = buf[n:]
		fmt.Printf("%v code=%v text=%q payload=%q\n", r.Kind, r.Code, r.Text, r.Payload)
	}
	// Output:
	// OK code=unknown text="7" payload=""
	// VALUE code=unknown text="" payload="hello"
	// ERROR code=not_found text="no region x" payload=""
	// ERROR code=unknown text="Data too long" payload=""
}
