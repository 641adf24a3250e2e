package proto

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

var (
	id4k      = []byte("region-1")
	payload4k = bytes.Repeat([]byte("0123456789abcdef"), 256)
)

// requestRoundTrips pairs each request encoder with the request it must
// parse back to. Their concatenation is testdata/requests.golden.
var requestRoundTrips = []struct {
	name string
	enc  []byte
	want Request
}{
	{"read", AppendRead(nil), Request{Cmd: CmdRead}},
	{"write", AppendWrite(nil, b("hello\nworld")), Request{Cmd: CmdWrite, Payload: b("hello\nworld")}},
	{"write/empty", AppendWrite(nil, nil), Request{Cmd: CmdWrite, Payload: b("")}},
	{"ping", AppendPing(nil), Request{Cmd: CmdPing}},
	{"use", AppendUse(nil, b("r1")), Request{Cmd: CmdUse, ID: b("r1")}},
	{"get", AppendGet(nil, b("r1")), Request{Cmd: CmdGet, ID: b("r1")}},
	{"get/range", AppendGetRange(nil, b("r1"), 5, 10), Request{Cmd: CmdGet, ID: b("r1"), HasRange: true, Offset: 5, Length: 10}},
	{"get/with-none", AppendGetWith(nil, b("r1"), GetOptions{}), Request{Cmd: CmdGet, ID: b("r1")}},
	{"get/consistent", AppendGetWith(nil, b("r1"), GetOptions{Consistent: true}), Request{Cmd: CmdGet, ID: b("r1"), Consistent: true}},
	{"get/range-consistent", AppendGetWith(nil, b("r1"), GetOptions{HasRange: true, Offset: 5, Length: 10, Consistent: true}),
		Request{Cmd: CmdGet, ID: b("r1"), HasRange: true, Offset: 5, Length: 10, Consistent: true}},
	{"get/consistent-region-named-consistent", AppendGetWith(nil, b("consistent"), GetOptions{Consistent: true}), Request{Cmd: CmdGet, ID: b("consistent"), Consistent: true}},
	{"read/consistent", AppendReadConsistent(nil), Request{Cmd: CmdRead, Consistent: true}},
	{"set", AppendSet(nil, b("r1"), b("abc"), SetOptions{}), Request{Cmd: CmdSet, ID: b("r1"), Payload: b("abc")}},
	{"set/all", AppendSet(nil, b("r1"), b("\x00\xff"), SetOptions{HasAt: true, At: 3, HasIfVer: true, IfVersion: 8, ClientID: b("client-7"), Seq: 41}),
		Request{Cmd: CmdSet, ID: b("r1"), Payload: b("\x00\xff"), HasAt: true, Offset: 3, HasIfVer: true, IfVersion: 8, ClientID: b("client-7"), Seq: 41}},
	{"set/all-fence", AppendSet(nil, b("r1"), b("ab"), SetOptions{HasAt: true, At: 3, HasIfVer: true, IfVersion: 8, ClientID: b("client-7"), Seq: 41, HasFence: true, Fence: 1<<64 - 1}),
		Request{Cmd: CmdSet, ID: b("r1"), Payload: b("ab"), HasAt: true, Offset: 3, HasIfVer: true, IfVersion: 8, ClientID: b("client-7"), Seq: 41, HasFence: true, Fence: 1<<64 - 1}},
	{"set/fence", AppendSet(nil, b("r1"), b("abc"), SetOptions{HasFence: true, Fence: 17}),
		Request{Cmd: CmdSet, ID: b("r1"), Payload: b("abc"), HasFence: true, Fence: 17}},
	{"set/fence-zero", AppendSet(nil, b("r1"), b("x"), SetOptions{HasFence: true}), Request{Cmd: CmdSet, ID: b("r1"), Payload: b("x"), HasFence: true}},
	{"set/at-zero", AppendSet(nil, b("r1"), b("x"), SetOptions{HasAt: true}), Request{Cmd: CmdSet, ID: b("r1"), Payload: b("x"), HasAt: true}},
	{"info", AppendInfo(nil, nil), Request{Cmd: CmdInfo}},
	{"info/id", AppendInfo(nil, b("r1")), Request{Cmd: CmdInfo, ID: b("r1")}},
	{"list", AppendList(nil), Request{Cmd: CmdList}},
	{"create", AppendCreate(nil, b("r2"), CreateOptions{}), Request{Cmd: CmdCreate, ID: b("r2")}},
	{"create/all", AppendCreate(nil, b("r2"), CreateOptions{Size: 1 << 20, Layout: "raw", Durable: true}),
		Request{Cmd: CmdCreate, ID: b("r2"), Size: 1 << 20, Layout: b("raw"), Durable: true}},
	{"create/max-write", AppendCreate(nil, b("r2"), CreateOptions{Size: 1 << 31, Layout: "raw", MaxWrite: 1 << 20}),
		Request{Cmd: CmdCreate, ID: b("r2"), Size: 1 << 31, Layout: b("raw"), MaxWrite: 1 << 20}},
	{"delete", AppendDelete(nil, b("r2")), Request{Cmd: CmdDelete, ID: b("r2")}},
	{"watch", AppendWatch(nil, b("r1"), WatchOptions{}), Request{Cmd: CmdWatch, ID: b("r1")}},
	{"watch/from", AppendWatch(nil, b("r1"), WatchOptions{HasFrom: true, From: 12}), Request{Cmd: CmdWatch, ID: b("r1"), HasFrom: true, From: 12}},
	{"watch/from-delta", AppendWatch(nil, b("r1"), WatchOptions{HasFrom: true, From: 12, Delta: true}), Request{Cmd: CmdWatch, ID: b("r1"), HasFrom: true, From: 12, Delta: true}},
	{"unwatch", AppendUnwatch(nil, b("r1")), Request{Cmd: CmdUnwatch, ID: b("r1")}},
	{"auth", AppendAuth(nil, b("tok-123")), Request{Cmd: CmdAuth, ID: b("tok-123")}},
	{"lock", AppendLock(nil, b("r1"), LockOptions{}), Request{Cmd: CmdLock, ID: b("r1")}},
	{"lock/lease", AppendLock(nil, b("r1"), LockOptions{Lease: 30000, HasLease: true}), Request{Cmd: CmdLock, ID: b("r1"), HasLease: true, Lease: 30000}},
	{"lock/wait-zero", AppendLock(nil, b("r1"), LockOptions{HasWait: true}), Request{Cmd: CmdLock, ID: b("r1"), HasWait: true}},
	{"lock/all", AppendLock(nil, b("r1"), LockOptions{Lease: 10000, Wait: 5000, HasLease: true, HasWait: true}),
		Request{Cmd: CmdLock, ID: b("r1"), HasLease: true, Lease: 10000, HasWait: true, Wait: 5000}},
	{"renew", AppendRenew(nil, b("r1"), 17, 0), Request{Cmd: CmdRenew, ID: b("r1"), Token: 17}},
	{"renew/negative-lease", AppendRenew(nil, b("r1"), 17, -1), Request{Cmd: CmdRenew, ID: b("r1"), Token: 17}},
	{"renew/lease", AppendRenew(nil, b("r1"), 1<<64-1, 15000), Request{Cmd: CmdRenew, ID: b("r1"), Token: 1<<64 - 1, HasLease: true, Lease: 15000}},
	{"unlock", AppendUnlock(nil, b("r1"), 17), Request{Cmd: CmdUnlock, ID: b("r1"), Token: 17}},
	{"unlock/token-zero", AppendUnlock(nil, b("r1"), 0), Request{Cmd: CmdUnlock, ID: b("r1")}},
	{"cluster/status", AppendClusterStatus(nil), Request{Cmd: CmdCluster, Cluster: ClusterStatus}},
	{"cluster/add", AppendClusterAdd(nil, b("d"), b("127.0.0.1:9420"), nil), Request{Cmd: CmdCluster, Cluster: ClusterAdd, ID: b("d"), Addr: b("127.0.0.1:9420")}},
	{"cluster/add-fingerprint", AppendClusterAdd(nil, b("d"), b("[::1]:9420"), b("AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB")),
		Request{Cmd: CmdCluster, Cluster: ClusterAdd, ID: b("d"), Addr: b("[::1]:9420"), Fingerprint: b("AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB")}},
	{"cluster/remove", AppendClusterRemove(nil, b("c")), Request{Cmd: CmdCluster, Cluster: ClusterRemove, ID: b("c")}},
	{"cluster/leader", AppendClusterLeader(nil, b("node-2")), Request{Cmd: CmdCluster, Cluster: ClusterLeader, ID: b("node-2")}},
	{"quit", AppendQuit(nil), Request{Cmd: CmdQuit}},
}

// replyRoundTrips does the same for replies (testdata/replies.golden).
var replyRoundTrips = []struct {
	name string
	enc  []byte
	want Reply
}{
	{"ok", AppendOK(nil), Reply{Kind: ReplyOK}},
	{"ok/text", AppendOKText(nil, b("hello world")), Reply{Kind: ReplyOK, Text: b("hello world")}},
	{"ok/empty-text", AppendOKText(nil, nil), Reply{Kind: ReplyOK, Text: b("")}},
	{"ok/version", AppendOKVersion(nil, 99), Reply{Kind: ReplyOK, Text: b("99")}},
	{"ok/token", AppendOKVersion(nil, 1<<64-1), Reply{Kind: ReplyOK, Text: b("18446744073709551615")}},
	{"value", AppendValue(nil, 3, b("a\nb")), Reply{Kind: ReplyValue, Version: 3, Payload: b("a\nb")}},
	{"value/header", append(AppendValueHeader(nil, 4, 2), "xy\n"...), Reply{Kind: ReplyValue, Version: 4, Payload: b("xy")}},
	{"json", AppendJSON(nil, b(`{"a":1}`)), Reply{Kind: ReplyJSON, Payload: b(`{"a":1}`)}},
	{"event", AppendEvent(nil, b("r1"), 5, b("new")), Reply{Kind: ReplyEvent, ID: b("r1"), Version: 5, Payload: b("new")}},
	{"delta", AppendDelta(nil, b("r1"), 6, 4096, 10, b("new")), Reply{Kind: ReplyDelta, ID: b("r1"), Version: 6, Size: 4096, Offset: 10, Payload: b("new")}},
	{"pong", AppendPong(nil), Reply{Kind: ReplyPong}},
	{"error", AppendError(nil, CodeNotFound, "no region r9"), Reply{Kind: ReplyError, Code: CodeNotFound, Text: b("no region r9")}},
	{"error/newlines", AppendError(nil, CodeInternal, "two\r\nlines\n"), Reply{Kind: ReplyError, Code: CodeInternal, Text: b("two  lines ")}},
	{"error/no-message", AppendError(nil, CodeConflict, ""), Reply{Kind: ReplyError, Code: CodeConflict}},
	{"error/fenced", AppendError(nil, CodeFenced, "lease of r1 expired"), Reply{Kind: ReplyError, Code: CodeFenced, Text: b("lease of r1 expired")}},
	{"error/unknown-code", AppendError(nil, CodeUnknown, "Data too long"), Reply{Kind: ReplyError, Text: b("Data too long")}},
	{"error/out-of-range-code", AppendError(nil, Code(200), "x"), Reply{Kind: ReplyError, Text: b("x")}},
}

func TestRequestRoundTrip(t *testing.T) {
	for _, tt := range requestRoundTrips {
		t.Run("case="+tt.name, func(t *testing.T) {
			req, n, err := NewParser(DefaultLimits()).Next(tt.enc)
			if err != nil || n != len(tt.enc) {
				t.Fatalf("Next(%q) = %d, %v; want %d, nil", tt.enc, n, err, len(tt.enc))
			}
			if got, want := fmtReq(req), fmtReq(tt.want); got != want {
				t.Errorf("Next(%q) = %s, want %s", tt.enc, got, want)
			}
		})
	}
}

func TestReplyRoundTrip(t *testing.T) {
	for _, tt := range replyRoundTrips {
		t.Run("case="+tt.name, func(t *testing.T) {
			r, n, err := NewReplyParser(0, 0).Next(tt.enc)
			if err != nil || n != len(tt.enc) {
				t.Fatalf("Next(%q) = %d, %v; want %d, nil", tt.enc, n, err, len(tt.enc))
			}
			if got, want := fmtReply(r), fmtReply(tt.want); got != want {
				t.Errorf("Next(%q) = %s, want %s", tt.enc, got, want)
			}
		})
	}
}

// TestGolden pins the exact bytes of every encoder in testdata, and
// re-parses each golden file as one pipelined stream. Run with -update to
// rewrite them after an intended change.
func TestGolden(t *testing.T) {
	var reqs, replies []byte
	var wantReqs, wantReplies []string
	for _, tt := range requestRoundTrips {
		reqs = append(reqs, tt.enc...)
		wantReqs = append(wantReqs, fmtReq(tt.want))
	}
	for _, tt := range replyRoundTrips {
		replies = append(replies, tt.enc...)
		wantReplies = append(wantReplies, fmtReply(tt.want))
	}
	files := []struct {
		name  string
		data  []byte
		parse func([]byte) ([]string, error)
		want  []string
	}{
		{"requests.golden", reqs, func(d []byte) ([]string, error) { return parseStream(NewParser(DefaultLimits()), d, 0) }, wantReqs},
		{"replies.golden", replies, func(d []byte) ([]string, error) { return parseReplies(NewReplyParser(0, 0), d, 0) }, wantReplies},
	}
	for _, f := range files {
		path := filepath.Join("testdata", f.name)
		if *update {
			if err := os.WriteFile(path, f.data, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		golden, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(golden, f.data) {
			t.Errorf("%s differs from the encoders' output (run go test -update after an intended change):\n%q\nwant\n%q", path, f.data, golden)
		}
		got, err := f.parse(golden)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Join(got, "\n") != strings.Join(f.want, "\n") {
			t.Errorf("%s parses to\n%s\nwant\n%s", path, strings.Join(got, "\n"), strings.Join(f.want, "\n"))
		}
	}
}

func TestEncoderAllocs(t *testing.T) {
	dst := make([]byte, 0, 2*len(payload4k))
	encoders := []struct {
		name string
		enc  func([]byte) []byte
	}{
		{"OK", AppendOK},
		{"OKText", func(d []byte) []byte { return AppendOKText(d, payload4k) }},
		{"OKVersion", func(d []byte) []byte { return AppendOKVersion(d, 1<<63) }},
		{"Value", func(d []byte) []byte { return AppendValue(d, 12345, payload4k) }},
		{"ValueHeader", func(d []byte) []byte { return AppendValueHeader(d, 12345, len(payload4k)) }},
		{"JSON", func(d []byte) []byte { return AppendJSON(d, payload4k) }},
		{"Event", func(d []byte) []byte { return AppendEvent(d, id4k, 9, payload4k) }},
		{"Pong", AppendPong},
		{"Error", func(d []byte) []byte { return AppendError(d, CodeNotFound, "no region\nnamed x") }},
		{"Read", AppendRead},
		{"Write", func(d []byte) []byte { return AppendWrite(d, payload4k) }},
		{"Get", func(d []byte) []byte { return AppendGet(d, id4k) }},
		{"GetRange", func(d []byte) []byte { return AppendGetRange(d, id4k, 1, 2) }},
		{"GetWith", func(d []byte) []byte {
			return AppendGetWith(d, id4k, GetOptions{HasRange: true, Offset: 1, Length: 2, Consistent: true})
		}},
		{"Set", func(d []byte) []byte {
			return AppendSet(d, id4k, payload4k, SetOptions{HasAt: true, At: 5, HasIfVer: true, IfVersion: 9, ClientID: id4k, Seq: 3, HasFence: true, Fence: 1<<64 - 1})
		}},
		{"Create", func(d []byte) []byte {
			return AppendCreate(d, id4k, CreateOptions{Size: 4096, Layout: "utf8", Durable: true})
		}},
		{"Watch", func(d []byte) []byte { return AppendWatch(d, id4k, WatchOptions{HasFrom: true, From: 3, Delta: true}) }},
		{"Lock", func(d []byte) []byte {
			return AppendLock(d, id4k, LockOptions{Lease: 1<<63 - 1, Wait: 1<<63 - 1, HasLease: true, HasWait: true})
		}},
		{"Renew", func(d []byte) []byte { return AppendRenew(d, id4k, 1<<64-1, 1<<63-1) }},
		{"Unlock", func(d []byte) []byte { return AppendUnlock(d, id4k, 1<<64-1) }},
	}
	for _, e := range encoders {
		if allocs := testing.AllocsPerRun(100, func() { dst = e.enc(dst[:0]) }); allocs != 0 {
			t.Errorf("Append%s allocates %v times with a pre-sized dst, want 0", e.name, allocs)
		}
	}
}

func TestApplyDelta(t *testing.T) {
	tests := []struct {
		name      string
		prev      string
		size, off int64
		p         string
		want      string
		err       bool
	}{
		{"middle", "abcdef", 6, 2, "XY", "abXYef", false},
		{"grow", "abc", 5, 1, "XYZW", "aXYZW", false},
		{"shrink", "abcdef", 3, 3, "", "abc", false},
		{"shrink and change", "abcdef", 3, 1, "XY", "aXY", false},
		{"from empty", "", 3, 0, "abc", "abc", false},
		{"no change", "abc", 3, 3, "", "abc", false},
		{"past the end", "abc", 3, 2, "XY", "", true},
		{"offset past size", "abc", 3, 4, "", "", true},
		{"negative size", "abc", -1, 0, "", "", true},
		{"starts past the previous end", "abc", 6, 4, "XY", "", true},
		{"grows without reaching the end", "abc", 6, 1, "XY", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			prev := []byte(tt.prev)
			got, err := ApplyDelta(prev, tt.size, tt.off, []byte(tt.p))
			if (err != nil) != tt.err || string(got) != tt.want {
				t.Errorf("ApplyDelta = %q, %v; want %q (error %v)", got, err, tt.want, tt.err)
			}
			if string(prev) != tt.prev {
				t.Errorf("ApplyDelta changed prev to %q", prev)
			}
			for _, spare := range []int{0, 16} { // in place, with and without room
				buf := append(make([]byte, 0, len(tt.prev)+spare), tt.prev...)
				got, err := ApplyDeltaTo(buf, tt.size, tt.off, []byte(tt.p))
				if (err != nil) != tt.err || !tt.err && string(got) != tt.want || tt.err && string(got) != tt.prev {
					t.Errorf("ApplyDeltaTo (spare %d) = %q, %v; want %q (error %v)", spare, got, err, tt.want, tt.err)
				}
			}
		})
	}
}

// TestAppendConflict checks the conflict reply's bytes, that the reply
// parser reads its fields back, and that it keeps what clients older than
// the expected= field parse: the current version as the first word, and
// "expected version N" in the message.
func TestAppendConflict(t *testing.T) {
	const msg = "version conflict: expected version 5, region is at version 7"
	tests := []struct {
		name              string
		current, expected uint64
		msg, want         string
	}{
		{"message", 7, 5, msg, "ERROR conflict 7 expected=5 " + msg + "\n"},
		{"no message", 1<<64 - 1, 0, "", "ERROR conflict 18446744073709551615 expected=0\n"},
		{"two lines", 2, 1, "a\nb", "ERROR conflict 2 expected=1 a b\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := AppendConflict([]byte("x"), tt.current, tt.expected, tt.msg)
			if string(got) != "x"+tt.want {
				t.Fatalf("AppendConflict = %q, want %q", got, "x"+tt.want)
			}
			r, n, err := NewReplyParser(0, 0).Next(got[1:])
			if err != nil || n != len(tt.want) {
				t.Fatalf("parsing %q: n = %d, err = %v", got[1:], n, err)
			}
			want := ConflictFields{Current: tt.current, Expected: tt.expected, HasCurrent: true, HasExpected: true}
			if r.Code != CodeConflict || r.Conflict != want {
				t.Errorf("parsed: code %v, fields %+v; want conflict, %+v", r.Code, r.Conflict, want)
			}
			if first, _, _ := strings.Cut(string(r.Text), " "); first != strconv.FormatUint(tt.current, 10) {
				t.Errorf("message's first word = %q, want the current version (what older clients read)", first)
			}
		})
	}
}
