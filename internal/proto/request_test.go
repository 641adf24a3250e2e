package proto

import (
	"bytes"
	"errors"
	"strconv"
	"strings"
	"testing"
)

// b is []byte(s), for tables.
func b(s string) []byte { return []byte(s) }

var parseTests = []struct {
	name string
	in   string
	want Request
}{
	// Compatible commands.
	{"read", "READ\n", Request{Cmd: CmdRead}},
	{"read/lower", "read\n", Request{Cmd: CmdRead}},
	{"read/mixed", "ReAd\n", Request{Cmd: CmdRead}},
	{"read/crlf", "READ\r\n", Request{Cmd: CmdRead}},
	{"read/spaces", "  READ   \n", Request{Cmd: CmdRead}},
	{"read/spaces-crlf", " READ \r\n", Request{Cmd: CmdRead}},
	{"write", "WRITE 5\nhello\n", Request{Cmd: CmdWrite, Payload: b("hello")}},
	{"write/crlf", "WRITE 5\r\nhello\r\n", Request{Cmd: CmdWrite, Payload: b("hello")}},
	{"write/empty", "WRITE 0\n\n", Request{Cmd: CmdWrite, Payload: b("")}},
	{"write/binary", "WRITE 6\n\x00\n\r\xff \n\n", Request{Cmd: CmdWrite, Payload: b("\x00\n\r\xff \n")}},
	{"write/utf8", "write 6\n你好\n", Request{Cmd: CmdWrite, Payload: b("你好")}},
	{"write/leading-zeros", "WRITE 005\nhello\n", Request{Cmd: CmdWrite, Payload: b("hello")}},
	{"write/payload-cr", "WRITE 1\n\r\r\n", Request{Cmd: CmdWrite, Payload: b("\r")}},

	// Extended commands.
	{"ping", "PING\n", Request{Cmd: CmdPing}},
	{"ping/lower", "ping\r\n", Request{Cmd: CmdPing}},
	{"quit", "QUIT\n", Request{Cmd: CmdQuit}},
	{"use", "USE counter\n", Request{Cmd: CmdUse, ID: b("counter")}},
	{"use/spaces", "use   a.b_c-9  \r\n", Request{Cmd: CmdUse, ID: b("a.b_c-9")}},
	{"use/max-id", "USE " + strings.Repeat("x", 64) + "\n", Request{Cmd: CmdUse, ID: b(strings.Repeat("x", 64))}},
	{"get", "GET r1\n", Request{Cmd: CmdGet, ID: b("r1")}},
	{"get/range", "GET r1 10 20\n", Request{Cmd: CmdGet, ID: b("r1"), HasRange: true, Offset: 10, Length: 20}},
	{"get/range-zero", "get r1 0 0\n", Request{Cmd: CmdGet, ID: b("r1"), HasRange: true}},
	{"get/range-max", "GET r1 9223372036854775807 9223372036854775807\n",
		Request{Cmd: CmdGet, ID: b("r1"), HasRange: true, Offset: 1<<63 - 1, Length: 1<<63 - 1}},
	{"set", "SET r1 3\nabc\n", Request{Cmd: CmdSet, ID: b("r1"), Payload: b("abc")}},
	{"set/at", "SET r1 3 at=7\nabc\n", Request{Cmd: CmdSet, ID: b("r1"), Payload: b("abc"), HasAt: true, Offset: 7}},
	{"set/ifver", "SET r1 3 ifver=12\nabc\n", Request{Cmd: CmdSet, ID: b("r1"), Payload: b("abc"), HasIfVer: true, IfVersion: 12}},
	{"set/ifver-max", "SET r1 0 ifver=18446744073709551615\n\n",
		Request{Cmd: CmdSet, ID: b("r1"), Payload: b(""), HasIfVer: true, IfVersion: 1<<64 - 1}},
	{"set/cid", "SET r1 3 cid=c1 seq=4\nabc\n", Request{Cmd: CmdSet, ID: b("r1"), Payload: b("abc"), ClientID: b("c1"), Seq: 4}},
	{"set/all", "SET r1 3 at=1 ifver=2 cid=c seq=0\nabc\n",
		Request{Cmd: CmdSet, ID: b("r1"), Payload: b("abc"), HasAt: true, Offset: 1, HasIfVer: true, IfVersion: 2, ClientID: b("c")}},
	{"set/all-reordered", "set r1 3  seq=0 ifver=2   cid=c AT=1 \r\nabc\r\n",
		Request{Cmd: CmdSet, ID: b("r1"), Payload: b("abc"), HasAt: true, Offset: 1, HasIfVer: true, IfVersion: 2, ClientID: b("c")}},
	{"info", "INFO\n", Request{Cmd: CmdInfo}},
	{"info/id", "INFO r1\n", Request{Cmd: CmdInfo, ID: b("r1")}},
	{"list", "LIST\n", Request{Cmd: CmdList}},
	{"create", "CREATE r1\n", Request{Cmd: CmdCreate, ID: b("r1")}},
	{"create/all", "CREATE r1 size=4096 layout=utf8 durable=1\n",
		Request{Cmd: CmdCreate, ID: b("r1"), Size: 4096, Layout: b("utf8"), Durable: true}},
	{"create/reordered", "create r1 durable=0 LAYOUT=raw Size=1\n",
		Request{Cmd: CmdCreate, ID: b("r1"), Size: 1, Layout: b("raw")}},
	{"create/max-write", "CREATE frames size=2147483648 layout=raw max_write=1048576\n",
		Request{Cmd: CmdCreate, ID: b("frames"), Size: 1 << 31, Layout: b("raw"), MaxWrite: 1 << 20}},
	{"create/max-write-first", "CREATE f MAX_WRITE=1 size=8 layout=raw\n",
		Request{Cmd: CmdCreate, ID: b("f"), Size: 8, Layout: b("raw"), MaxWrite: 1}},
	{"delete", "DELETE r1\n", Request{Cmd: CmdDelete, ID: b("r1")}},
	{"watch", "WATCH r1\n", Request{Cmd: CmdWatch, ID: b("r1")}},
	{"watch/from", "WATCH r1 from=0\n", Request{Cmd: CmdWatch, ID: b("r1"), HasFrom: true}},
	{"watch/from-9", "watch r1 FROM=9\n", Request{Cmd: CmdWatch, ID: b("r1"), HasFrom: true, From: 9}},
	{"watch/delta", "WATCH r1 delta=1\n", Request{Cmd: CmdWatch, ID: b("r1"), Delta: true}},
	{"watch/delta-0-from", "WATCH r1 Delta=0 from=4\n", Request{Cmd: CmdWatch, ID: b("r1"), HasFrom: true, From: 4}},
	{"unwatch", "UNWATCH r1\n", Request{Cmd: CmdUnwatch, ID: b("r1")}},
	{"auth", "AUTH s3cr3t/+=~!\n", Request{Cmd: CmdAuth, ID: b("s3cr3t/+=~!")}},

	// Linearizable reads: a trailing bare word.
	{"read/consistent", "READ consistent\n", Request{Cmd: CmdRead, Consistent: true}},
	{"read/consistent-case", " read  CONSISTENT \r\n", Request{Cmd: CmdRead, Consistent: true}},
	{"get/consistent", "GET r1 consistent\n", Request{Cmd: CmdGet, ID: b("r1"), Consistent: true}},
	{"get/consistent-mixed", "get r1 Consistent\r\n", Request{Cmd: CmdGet, ID: b("r1"), Consistent: true}},
	{"get/range-consistent", "GET r1 5 10 consistent\n", Request{Cmd: CmdGet, ID: b("r1"), HasRange: true, Offset: 5, Length: 10, Consistent: true}},
	{"get/region-named-consistent", "GET consistent\n", Request{Cmd: CmdGet, ID: b("consistent")}},
	{"get/region-named-consistent-consistent", "GET consistent consistent\n", Request{Cmd: CmdGet, ID: b("consistent"), Consistent: true}},
	{"get/range-region-named-consistent", "GET consistent 0 1\n", Request{Cmd: CmdGet, ID: b("consistent"), HasRange: true, Length: 1}},

	// Explicit locks and fencing.
	{"lock", "LOCK r1\n", Request{Cmd: CmdLock, ID: b("r1")}},
	{"lock/lower", "lock r1\r\n", Request{Cmd: CmdLock, ID: b("r1")}},
	{"lock/lease", "LOCK r1 lease=5000\n", Request{Cmd: CmdLock, ID: b("r1"), HasLease: true, Lease: 5000}},
	{"lock/wait-zero", "LOCK r1 wait=0\n", Request{Cmd: CmdLock, ID: b("r1"), HasWait: true}},
	{"lock/all", "LOCK r1 lease=30000 wait=250\n", Request{Cmd: CmdLock, ID: b("r1"), HasLease: true, Lease: 30000, HasWait: true, Wait: 250}},
	{"lock/reordered", "  Lock  r1  WAIT=007 Lease=1 \r\n", Request{Cmd: CmdLock, ID: b("r1"), HasLease: true, Lease: 1, HasWait: true, Wait: 7}},
	{"lock/max", "LOCK r1 lease=9223372036854775807 wait=9223372036854775807\n",
		Request{Cmd: CmdLock, ID: b("r1"), HasLease: true, Lease: 1<<63 - 1, HasWait: true, Wait: 1<<63 - 1}},
	{"renew", "RENEW r1 42\n", Request{Cmd: CmdRenew, ID: b("r1"), Token: 42}},
	{"renew/lease", "renew r1 42 LEASE=15000\r\n", Request{Cmd: CmdRenew, ID: b("r1"), Token: 42, HasLease: true, Lease: 15000}},
	{"renew/token-max", "RENEW r1 18446744073709551615\n", Request{Cmd: CmdRenew, ID: b("r1"), Token: 1<<64 - 1}},
	{"renew/token-zeros", "RENEW r1 0007\n", Request{Cmd: CmdRenew, ID: b("r1"), Token: 7}},
	{"unlock", "UNLOCK r1 42\n", Request{Cmd: CmdUnlock, ID: b("r1"), Token: 42}},
	{"unlock/spaces", " unlock   a.b-9   1 \r\n", Request{Cmd: CmdUnlock, ID: b("a.b-9"), Token: 1}},
	{"set/fence", "SET r1 3 fence=42\nabc\n", Request{Cmd: CmdSet, ID: b("r1"), Payload: b("abc"), HasFence: true, Fence: 42}},
	{"set/fence-zero", "SET r1 0 fence=0\n\n", Request{Cmd: CmdSet, ID: b("r1"), Payload: b(""), HasFence: true}},
	{"set/all-fence", "SET r1 3 at=1 ifver=2 cid=c seq=3 fence=4\nabc\n",
		Request{Cmd: CmdSet, ID: b("r1"), Payload: b("abc"), HasAt: true, Offset: 1, HasIfVer: true, IfVersion: 2, ClientID: b("c"), Seq: 3, HasFence: true, Fence: 4}},
	{"set/all-fence-reordered", "set r1 3 FENCE=18446744073709551615 seq=3 cid=c at=1  ifver=2\r\nabc\r\n",
		Request{Cmd: CmdSet, ID: b("r1"), Payload: b("abc"), HasAt: true, Offset: 1, HasIfVer: true, IfVersion: 2, ClientID: b("c"), Seq: 3, HasFence: true, Fence: 1<<64 - 1}},
}

func TestParserCommands(t *testing.T) {
	for _, tt := range parseTests {
		t.Run("case="+tt.name, func(t *testing.T) {
			p := NewParser(DefaultLimits())
			// Trailing bytes of the next request must not be consumed.
			in := []byte(tt.in + "PI")
			req, n, err := p.Next(in)
			if err != nil {
				t.Fatalf("Next(%q) error: %v", tt.in, err)
			}
			if n != len(tt.in) {
				t.Errorf("Next(%q) consumed %d, want %d", tt.in, n, len(tt.in))
			}
			if got, want := fmtReq(req), fmtReq(tt.want); got != want {
				t.Errorf("Next(%q) = %s, want %s", tt.in, got, want)
			}
			if p.Need() != 0 {
				t.Errorf("Need() = %d after a complete request, want 0", p.Need())
			}
		})
	}
}

func TestParserEmptyLines(t *testing.T) {
	for _, in := range []string{"\n", "\r\n", "   \n", " \r\n"} {
		p := NewParser(DefaultLimits())
		req, n, err := p.Next([]byte(in + "PING\n"))
		if err != nil || n != len(in) || req.Cmd != CmdNone {
			t.Errorf("Next(%q) = %v, %d, %v; want NONE, %d, nil", in, req.Cmd, n, err, len(in))
		}
	}
}

// small limits let the tests reach them.
var small = Limits{MaxLine: 24, MaxPayload: 8}

var malformedTests = []struct {
	name string
	lim  Limits // zero: DefaultLimits
	in   string // the bad request; "PING\n" follows it
	code Code
	n    int // bytes the error consumes (the whole of in when 0)
	off  int
}{
	{name: "unknown-verb", in: "FOO bar\n", code: CodeUnknownCommand},
	{name: "unknown-verb/prefix", in: "REA\n", code: CodeUnknownCommand},
	{name: "unknown-verb/longer", in: "READS\n", code: CodeUnknownCommand},
	{name: "unknown-verb/spaces", in: "  BLAH\n", code: CodeUnknownCommand, off: 2},

	{name: "missing/use", in: "USE\n", code: CodeBadRequest, off: 3},
	{name: "missing/get", in: "GET \n", code: CodeBadRequest, off: 4},
	{name: "missing/get-range-length", in: "GET a 1\n", code: CodeBadRequest, off: 7},
	{name: "missing/set-length", in: "SET a\n", code: CodeBadRequest, off: 5},
	{name: "missing/set", in: "SET\n", code: CodeBadRequest, off: 3},
	{name: "missing/write", in: "WRITE\r\n", code: CodeBadRequest, off: 5},
	{name: "missing/create", in: "CREATE\n", code: CodeBadRequest, off: 6},
	{name: "missing/delete", in: "delete\n", code: CodeBadRequest, off: 6},
	{name: "missing/watch", in: "WATCH\n", code: CodeBadRequest, off: 5},
	{name: "missing/unwatch", in: "UNWATCH\n", code: CodeBadRequest, off: 7},
	{name: "missing/auth", in: "AUTH\n", code: CodeBadRequest, off: 4},
	{name: "missing/lock", in: "LOCK\n", code: CodeBadRequest, off: 4},
	{name: "missing/renew", in: "RENEW\n", code: CodeBadRequest, off: 5},
	{name: "missing/renew-token", in: "RENEW a\n", code: CodeBadRequest, off: 7},
	{name: "missing/unlock", in: "UNLOCK\r\n", code: CodeBadRequest, off: 6},
	{name: "missing/unlock-token", in: "UNLOCK a \n", code: CodeBadRequest, off: 9},

	{name: "extra/read", in: "READ x\n", code: CodeBadRequest, off: 5},
	{name: "extra/read-before-consistent", in: "READ x consistent\n", code: CodeBadRequest, off: 5},
	{name: "flag/read-twice", in: "READ consistent consistent\n", code: CodeBadRequest, off: 5},
	{name: "flag/get-twice", in: "GET a consistent consistent\n", code: CodeBadRequest, off: 6},
	{name: "flag/get-not-last", in: "GET a consistent 1 2\n", code: CodeBadRequest, off: 19},
	{name: "flag/get-range-length", in: "GET a 1 consistent\n", code: CodeBadRequest, off: 18},
	{name: "flag/get-extra", in: "GET a 1 2 3 consistent\n", code: CodeBadRequest, off: 10},
	{name: "flag/get-value", in: "GET a consistent=1\n", code: CodeBadRequest, off: 18},
	{name: "flag/set", in: "SET a 2 consistent\nhi\n", code: CodeBadRequest, off: 8},
	{name: "flag/watch", in: "WATCH a consistent\n", code: CodeBadRequest, off: 8},
	{name: "extra/ping", in: "PING PONG\n", code: CodeBadRequest, off: 5},
	{name: "extra/quit", in: "QUIT now\n", code: CodeBadRequest, off: 5},
	{name: "extra/list", in: "LIST all\n", code: CodeBadRequest, off: 5},
	{name: "extra/use", in: "USE a b\n", code: CodeBadRequest, off: 6},
	{name: "extra/info", in: "INFO a b\n", code: CodeBadRequest, off: 7},
	{name: "extra/get", in: "GET a 1 2 3\n", code: CodeBadRequest, off: 10},
	{name: "extra/write-skips-payload", in: "WRITE 5 x\nhello\n", code: CodeBadRequest, off: 8},
	{name: "extra/set-skips-payload", in: "SET a 2 at=1 ifver=1 cid=c seq=1 x\nhi\n", code: CodeBadRequest, off: 33},
	{name: "extra/set-many", in: "SET a 2 a b c d e f g h i j\nhi\n", code: CodeBadRequest, off: 18},
	{name: "extra/set-fence-skips-payload", in: "SET a 2 at=1 ifver=1 cid=c seq=1 fence=1 x\nhi\n", code: CodeBadRequest, off: 41},
	{name: "extra/create", in: "CREATE a size=1 layout=raw durable=1 x\n", code: CodeBadRequest, off: 37},
	{name: "extra/delete", in: "DELETE a b\n", code: CodeBadRequest, off: 9},
	{name: "extra/watch", in: "WATCH a from=1 delta=1 x\n", code: CodeBadRequest, off: 23},
	{name: "extra/unwatch", in: "UNWATCH a b\n", code: CodeBadRequest, off: 10},
	{name: "extra/auth", in: "AUTH a b\n", code: CodeBadRequest, off: 7},
	{name: "extra/lock", in: "LOCK a lease=1 wait=1 x\n", code: CodeBadRequest, off: 22},
	{name: "extra/lock-duplicate", in: "LOCK a lease=1 wait=1 lease=1\n", code: CodeBadRequest, off: 22},
	{name: "extra/renew", in: "RENEW a 1 lease=1 x\n", code: CodeBadRequest, off: 18},
	{name: "extra/unlock", in: "UNLOCK a 1 2\n", code: CodeBadRequest, off: 11},
	{name: "extra/unlock-lease", in: "UNLOCK a 1 lease=5\n", code: CodeBadRequest, off: 11},

	{name: "number/write-letters", in: "WRITE abc\n", code: CodeBadRequest, off: 6},
	{name: "number/write-plus", in: "WRITE +5\n", code: CodeBadRequest, off: 6},
	{name: "number/write-minus", in: "WRITE -5\n", code: CodeBadRequest, off: 6},
	{name: "number/write-suffix", in: "WRITE 5a\n", code: CodeBadRequest, off: 6},
	{name: "number/write-hex", in: "WRITE 0x5\n", code: CodeBadRequest, off: 6},
	{name: "number/write-uint64-overflow", in: "WRITE 99999999999999999999\n", code: CodeBadRequest, off: 6},
	{name: "number/write-int64-overflow", in: "WRITE 9223372036854775808\n", code: CodeBadRequest, off: 6},
	{name: "number/set-length", in: "SET a -1\n", code: CodeBadRequest, off: 6},
	{name: "number/get-offset", in: "GET a -1 5\n", code: CodeBadRequest, off: 6},
	{name: "number/get-length", in: "GET a 1 x\n", code: CodeBadRequest, off: 8},
	{name: "number/get-offset-overflow", in: "GET a 9223372036854775808 1\n", code: CodeBadRequest, off: 6},
	{name: "number/set-at", in: "SET a 5 at=x\nhello\n", code: CodeBadRequest, off: 8},
	{name: "number/set-at-empty", in: "SET a 5 at=\nhello\n", code: CodeBadRequest, off: 8},
	{name: "number/set-ifver-minus", in: "SET a 5 ifver=-1\nhello\n", code: CodeBadRequest, off: 8},
	{name: "number/set-ifver-overflow", in: "SET a 5 ifver=18446744073709551616\nhello\n", code: CodeBadRequest, off: 8},
	{name: "number/set-seq-empty", in: "SET a 5 cid=c seq=\nhello\n", code: CodeBadRequest, off: 14},
	{name: "number/create-size", in: "CREATE a size=1e3\n", code: CodeBadRequest, off: 9},
	{name: "number/create-size-minus", in: "CREATE a size=-1\n", code: CodeBadRequest, off: 9},
	{name: "number/create-max-write-zero", in: "CREATE a max_write=0\n", code: CodeBadRequest, off: 9},
	{name: "number/create-max-write-minus", in: "CREATE a max_write=-4\n", code: CodeBadRequest, off: 9},
	{name: "number/create-max-write-letters", in: "CREATE a max_write=1k\n", code: CodeBadRequest, off: 9},
	{name: "extra/create-max-write-duplicate", in: "CREATE a max_write=1 max_write=2\n", code: CodeBadRequest, off: 21},
	{name: "extra/watch-max-write", in: "WATCH a max_write=1\n", code: CodeBadRequest, off: 8},
	{name: "number/watch-from", in: "WATCH a from=\n", code: CodeBadRequest, off: 8},
	{name: "number/watch-from-plus", in: "WATCH a from=+1\n", code: CodeBadRequest, off: 8},
	{name: "option/watch-delta-2", in: "WATCH a delta=2\n", code: CodeBadRequest, off: 8},
	{name: "option/watch-delta-twice", in: "WATCH a delta=1 delta=1\n", code: CodeBadRequest, off: 16},
	{name: "number/renew-token", in: "RENEW a x\n", code: CodeBadRequest, off: 8},
	{name: "number/renew-token-minus", in: "RENEW a -1\n", code: CodeBadRequest, off: 8},
	{name: "number/renew-token-is-option", in: "RENEW a lease=5\n", code: CodeBadRequest, off: 8},
	{name: "number/unlock-token-overflow", in: "UNLOCK a 18446744073709551616\n", code: CodeBadRequest, off: 9},
	{name: "number/unlock-token-hex", in: "UNLOCK a 0x1\n", code: CodeBadRequest, off: 9},
	{name: "number/lock-lease-zero", in: "LOCK a lease=0\n", code: CodeBadRequest, off: 7},
	{name: "number/lock-lease-zeros", in: "LOCK a wait=1 lease=000\n", code: CodeBadRequest, off: 14},
	{name: "number/renew-lease-zero", in: "RENEW a 1 lease=0\n", code: CodeBadRequest, off: 10},
	{name: "number/lock-lease-minus", in: "LOCK a lease=-1\n", code: CodeBadRequest, off: 7},
	{name: "number/lock-lease-empty", in: "LOCK a lease=\n", code: CodeBadRequest, off: 7},
	{name: "number/lock-lease-unit", in: "LOCK a lease=10s\n", code: CodeBadRequest, off: 7},
	{name: "number/lock-lease-overflow", in: "LOCK a lease=9223372036854775808\n", code: CodeBadRequest, off: 7},
	{name: "number/lock-wait-minus", in: "LOCK a wait=-1\n", code: CodeBadRequest, off: 7},
	{name: "number/lock-wait-empty", in: "LOCK a wait=\n", code: CodeBadRequest, off: 7},
	{name: "number/set-fence", in: "SET a 5 fence=x\nhello\n", code: CodeBadRequest, off: 8},
	{name: "number/set-fence-empty", in: "SET a 5 fence=\nhello\n", code: CodeBadRequest, off: 8},
	{name: "number/set-fence-minus", in: "SET a 5 fence=-1\nhello\n", code: CodeBadRequest, off: 8},
	{name: "number/set-fence-overflow", in: "SET a 5 fence=18446744073709551616\nhello\n", code: CodeBadRequest, off: 8},

	{name: "too-large/write", lim: small, in: "WRITE 9\n123456789\n", code: CodeTooLarge, off: 6},
	{name: "too-large/write-crlf", lim: small, in: "WRITE 9\r\n123456789\r\n", code: CodeTooLarge, off: 6},
	{name: "too-large/set", lim: small, in: "SET a 10 at=1\n0123456789\n", code: CodeTooLarge, off: 6},
	{name: "too-large/set-bad-id-first", lim: small, in: "SET a! 10\n0123456789\n", code: CodeBadID, off: 4},
	{name: "too-large/default", in: "WRITE 1073807361\n", code: CodeTooLarge, n: 22, off: 6},

	{name: "id/leading-dash", in: "USE -a\n", code: CodeBadID, off: 4},
	{name: "id/leading-dot", in: "DELETE .a\n", code: CodeBadID, off: 7},
	{name: "id/leading-underscore", in: "CREATE _a\n", code: CodeBadID, off: 7},
	{name: "id/bang", in: "GET a!\n", code: CodeBadID, off: 4},
	{name: "id/slash", in: "INFO a/b\n", code: CodeBadID, off: 5},
	{name: "id/too-long", in: "USE " + strings.Repeat("x", 65) + "\n", code: CodeBadID, off: 4},
	{name: "id/watch", in: "WATCH a=b\n", code: CodeBadID, off: 6},
	{name: "id/unwatch", in: "UNWATCH a:b\n", code: CodeBadID, off: 8},
	{name: "id/set-skips-payload", in: "SET bad/id 3\nabc\n", code: CodeBadID, off: 4},
	{name: "id/get-range", in: "GET ~ 1 2\n", code: CodeBadID, off: 4},
	{name: "id/lock", in: "LOCK a/b lease=1\n", code: CodeBadID, off: 5},
	{name: "id/renew", in: "RENEW -a 1\n", code: CodeBadID, off: 6},
	{name: "id/unlock", in: "UNLOCK a! 1\n", code: CodeBadID, off: 7},
	{name: "id/set-cid", in: "SET a 5 cid=-x seq=1\nhello\n", code: CodeBadRequest, off: 8},
	{name: "id/set-cid-empty", in: "SET a 5 cid= seq=1\nhello\n", code: CodeBadRequest, off: 8},

	{name: "option/unknown", in: "SET a 5 foo=1\nhello\n", code: CodeBadRequest, off: 8},
	{name: "option/no-equals", in: "SET a 5 at\nhello\n", code: CodeBadRequest, off: 8},
	{name: "option/empty-key", in: "SET a 5 =1\nhello\n", code: CodeBadRequest, off: 8},
	{name: "option/other-command", in: "CREATE a at=5\n", code: CodeBadRequest, off: 9},
	{name: "option/watch-size", in: "WATCH a size=1\n", code: CodeBadRequest, off: 8},
	{name: "option/layout", in: "CREATE a layout=utf16\n", code: CodeBadRequest, off: 9},
	{name: "option/layout-case", in: "CREATE a layout=UTF8\n", code: CodeBadRequest, off: 9},
	{name: "option/durable", in: "CREATE a durable=2\n", code: CodeBadRequest, off: 9},
	{name: "option/durable-word", in: "CREATE a durable=true\n", code: CodeBadRequest, off: 9},
	{name: "option/cid-without-seq", in: "SET a 5 cid=c\nhello\n", code: CodeBadRequest, off: 13},
	{name: "option/seq-without-cid", in: "SET a 5 seq=1\nhello\n", code: CodeBadRequest, off: 13},
	{name: "option/duplicate-at", in: "SET a 5 at=1 AT=2\nhello\n", code: CodeBadRequest, off: 13},
	{name: "option/duplicate-seq", in: "SET a 5 cid=c seq=1 seq=1\nhello\n", code: CodeBadRequest, off: 20},
	{name: "option/duplicate-size", in: "CREATE a size=1 size=2\n", code: CodeBadRequest, off: 16},
	{name: "option/duplicate-from", in: "WATCH a from=1 from=2\n", code: CodeBadRequest, off: 15},
	{name: "option/lock-unknown", in: "LOCK a ttl=5\n", code: CodeBadRequest, off: 7},
	{name: "option/lock-no-equals", in: "LOCK a 5000\n", code: CodeBadRequest, off: 7},
	{name: "option/lock-fence", in: "LOCK a fence=1\n", code: CodeBadRequest, off: 7},
	{name: "option/renew-wait", in: "RENEW a 1 wait=5\n", code: CodeBadRequest, off: 10},
	{name: "option/create-fence", in: "CREATE a fence=1\n", code: CodeBadRequest, off: 9},
	{name: "option/set-lease", in: "SET a 5 lease=1\nhello\n", code: CodeBadRequest, off: 8},
	{name: "option/duplicate-lease", in: "LOCK a lease=1 LEASE=2\n", code: CodeBadRequest, off: 15},
	{name: "option/duplicate-wait", in: "LOCK a wait=1 wait=1\n", code: CodeBadRequest, off: 14},
	{name: "option/duplicate-fence", in: "SET a 5 fence=1 Fence=1\nhello\n", code: CodeBadRequest, off: 16},

	{name: "payload/no-newline", in: "WRITE 3\nhelloX\n", code: CodeBadRequest, n: 0, off: 11},
	{name: "payload/cr-no-newline", in: "WRITE 3\nabc\rX\n", code: CodeBadRequest, n: 0, off: 11},
	{name: "payload/set-no-newline", in: "SET a 1\nxy\r\n", code: CodeBadRequest, n: 0, off: 9},

	{name: "byte/nul", in: "RE\x00AD\n", code: CodeBadRequest, off: 2},
	{name: "byte/nul-after", in: "READ\x00\n", code: CodeBadRequest, off: 4},
	{name: "byte/nul-id", in: "GET a\x00b\n", code: CodeBadRequest, off: 5},
	{name: "byte/invalid-utf8", in: "USE \xff\xfe\n", code: CodeBadRequest, off: 4},
	{name: "byte/utf8", in: "USE é\n", code: CodeBadRequest, off: 4},
	{name: "byte/tab", in: "USE\ta\n", code: CodeBadRequest, off: 3},
	{name: "byte/cr-inside", in: "RE\rAD\n", code: CodeBadRequest, off: 2},
	{name: "byte/del", in: "READ\x7f\n", code: CodeBadRequest, off: 4},
	{name: "byte/write-skips-payload", in: "WRITE 5 \x00\nhello\n", code: CodeBadRequest, off: 8},
	{name: "byte/set-skips-payload", in: "SET a\xff 2\nhi\n", code: CodeBadRequest, off: 5},
	{name: "byte/cr-cr-lf", in: "READ\r\r\n", code: CodeBadRequest, off: 4},

	{name: "line/too-long", lim: small, in: "GET " + strings.Repeat("a", 30) + "\n", code: CodeLineTooLong},
	{name: "line/one-over", lim: small, in: "GET " + strings.Repeat("a", 20) + "\n", code: CodeLineTooLong},
	{name: "line/crlf-one-over", lim: small, in: "GET " + strings.Repeat("a", 19) + "\r\n", code: CodeLineTooLong},
}

func TestParserMalformed(t *testing.T) {
	for _, tt := range malformedTests {
		t.Run("case="+tt.name, func(t *testing.T) {
			lim := tt.lim
			if lim == (Limits{}) {
				lim = DefaultLimits()
			}
			p := NewParser(lim)
			in := []byte(tt.in + "PING\n")
			req, n, err := p.Next(in)
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("Next(%q) = %v, %d, %v; want a *Error", tt.in, fmtReq(req), n, err)
			}
			if req.Cmd != CmdNone {
				t.Errorf("Next(%q) returned a request %s with its error", tt.in, fmtReq(req))
			}
			if e.Code != tt.code || e.Offset != tt.off {
				t.Errorf("Next(%q) error %s, want code %v at offset %d", tt.in, fmtErr(err), tt.code, tt.off)
			}
			wantN := tt.n
			if wantN == 0 {
				wantN = len(tt.in)
			}
			if n != wantN {
				t.Errorf("Next(%q) consumed %d, want %d (%s)", tt.in, n, wantN, fmtErr(err))
			}
			if len(e.Snippet) > snippetMax {
				t.Errorf("snippet %q longer than %d", e.Snippet, snippetMax)
			}
			if e.Msg == "" || e.Msg != strings.ToLower(e.Msg) || strings.HasSuffix(e.Msg, ".") {
				t.Errorf("message %q is not lowercase without punctuation", e.Msg)
			}
			if !errors.Is(err, sentinelFor(tt.code)) {
				t.Errorf("errors.Is(%v, %v) = false", err, sentinelFor(tt.code))
			}
			if tt.n != 0 {
				return // the rest of the request is not in the buffer
			}
			// The parser is in sync again: the next request is PING.
			req, n, err = p.Next(in[n:])
			if err != nil || req.Cmd != CmdPing || n != 5 {
				t.Errorf("after the error: Next = %s, %d, %v; want PING, 5, nil", fmtReq(req), n, err)
			}
		})
	}
}

func sentinelFor(c Code) error {
	return (&Error{Code: c}).Unwrap()
}

func TestErrorString(t *testing.T) {
	p := NewParser(DefaultLimits())
	_, _, err := p.Next([]byte("FOO\t" + strings.Repeat("x", 100) + "\n"))
	const want = `invalid byte in command line at offset 3: "\t"`
	if err == nil || err.Error() != want {
		t.Errorf("Error() = %v, want %s", err, want)
	}
	_, _, err = p.Next([]byte("NOPE" + strings.Repeat("é", 40) + "\n"))
	if got := err.(*Error); len(got.Snippet) != 1 || got.Offset != 4 {
		t.Errorf("snippet = %q at %d, want 1 byte at 4", got.Snippet, got.Offset)
	}
	_, _, err = p.Next([]byte("UNKNOWNVERB" + strings.Repeat("y", 100) + "\n"))
	if got := err.(*Error); len(got.Snippet) != snippetMax || !strings.HasPrefix(err.Error(), `unknown command at offset 0: "UNKNOWNVERByyy`) {
		t.Errorf("Error() = %s, want a %d-byte snippet", err, snippetMax)
	}
	_, _, err = p.Next([]byte("USE\n"))
	if got, want := err.Error(), "missing argument at offset 3"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}

// TestParserLineTooLongAcrossCalls feeds an over-long line in pieces: one
// error, then the rest is discarded up to the newline by later calls.
func TestParserLineTooLongAcrossCalls(t *testing.T) {
	p := NewParser(Limits{MaxLine: 16})
	calls := []struct {
		in   string
		cmd  Cmd
		n    int
		code Code // CodeUnknown: no error
	}{
		{"GET aaaaaaaa", CmdNone, 0, CodeUnknown},                  // 12 bytes: could still end in time
		{"GET aaaaaaaaaaaaaaaaaaaa", CmdNone, 24, CodeLineTooLong}, // all of it: no newline yet
		{"aaaaaaaa", CmdNone, 8, CodeUnknown},
		{"", CmdNone, 0, CodeUnknown},
		{"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", CmdNone, 40, CodeUnknown},
		{"aa\r\nPING\n", CmdNone, 4, CodeUnknown},
		{"PING\n", CmdPing, 5, CodeUnknown},
		// Longer than the limit with the newline already in the buffer.
		{strings.Repeat("b", 30) + "\nPING\n", CmdNone, 31, CodeLineTooLong},
		{"PING\n", CmdPing, 5, CodeUnknown},
		// Exactly at the limit is fine: 15 bytes and the newline.
		{"GET " + strings.Repeat("c", 11) + "\n", CmdGet, 16, CodeUnknown},
	}
	for i, c := range calls {
		req, n, err := p.Next([]byte(c.in))
		code := CodeUnknown
		if err != nil {
			code = err.(*Error).Code
		}
		if req.Cmd != c.cmd || n != c.n || code != c.code {
			t.Errorf("call %d: Next(%q) = %v, %d, %v; want %v, %d, code %v", i, c.in, req.Cmd, n, err, c.cmd, c.n, c.code)
		}
	}
}

// TestParserTooLargeAcrossCalls skips a payload over the limit as it
// arrives, then parses the next request.
func TestParserTooLargeAcrossCalls(t *testing.T) {
	for _, nl := range []string{"\n", "\r\n"} {
		p := NewParser(Limits{MaxPayload: 8})
		payload := strings.Repeat("z", 20)
		calls := []struct {
			in   string
			cmd  Cmd
			n    int
			code Code
		}{
			{"WRITE 20" + nl, CmdNone, 8 + len(nl), CodeTooLarge},
			{payload[:10], CmdNone, 10, CodeUnknown},
			{"", CmdNone, 0, CodeUnknown},
			{payload[10:15], CmdNone, 5, CodeUnknown},
			{payload[15:] + nl[:1], CmdNone, 6, CodeUnknown},
			{nl[1:] + "PING\n", CmdNone, len(nl) - 1, CodeUnknown},
			{"PING\n", CmdPing, 5, CodeUnknown},
		}
		if nl == "\n" {
			// The final "\n" was consumed with the payload; drop the empty step.
			calls = append(calls[:5], calls[6:]...)
		}
		for i, c := range calls {
			req, n, err := p.Next([]byte(c.in))
			code := CodeUnknown
			if err != nil {
				code = err.(*Error).Code
			}
			if req.Cmd != c.cmd || n != c.n || code != c.code {
				t.Errorf("nl=%q call %d: Next(%q) = %v, %d, %v; want %v, %d, code %v", nl, i, c.in, req.Cmd, n, err, c.cmd, c.n, c.code)
			}
		}
	}
}

// TestParserSplit splits every valid request at every offset: the first
// part is incomplete, and the whole gives the same result as in one piece.
func TestParserSplit(t *testing.T) {
	for _, tt := range parseTests {
		t.Run("case="+tt.name, func(t *testing.T) {
			in := []byte(tt.in)
			p := NewParser(DefaultLimits())
			for k := 0; k < len(in); k++ {
				req, n, err := p.Next(in[:k])
				if n != 0 || err != nil || req.Cmd != CmdNone {
					t.Fatalf("Next(%q) = %s, %d, %v; want incomplete", in[:k], fmtReq(req), n, err)
				}
				if need := p.Need(); need != 0 && (need <= int64(k) || need > int64(len(in))) {
					t.Errorf("Need() = %d after %d of %d bytes", need, k, len(in))
				}
				req, n, err = p.Next(in)
				if err != nil || n != len(in) || fmtReq(req) != fmtReq(tt.want) {
					t.Fatalf("after split at %d: Next = %s, %d, %v; want %s, %d", k, fmtReq(req), n, err, fmtReq(tt.want), len(in))
				}
			}
		})
	}
}

func TestParserNeed(t *testing.T) {
	tests := []struct {
		in   string
		need int64
	}{
		{"WRITE 5", 0},
		{"WRITE 5\n", 14},
		{"WRITE 5\nhel", 14},
		{"WRITE 5\nhello", 14},
		{"WRITE 5\r\nhello\r", 16},
		{"SET a 1000\n", 1012},
		{"SET a 5 fence=3\n", 22},
		{"GET a", 0},
	}
	for _, tt := range tests {
		p := NewParser(DefaultLimits())
		_, n, err := p.Next([]byte(tt.in))
		if n != 0 || err != nil || p.Need() != tt.need {
			t.Errorf("Next(%q) = %d, %v with Need() = %d; want 0, nil, %d", tt.in, n, err, p.Need(), tt.need)
		}
	}
}

// stream is a mix of valid and malformed requests, some split awkwardly
// by the limits of the small parser.
var stream = strings.Join([]string{
	"READ\n", "WRITE 5\nhello\n", "  get  r1 0 4 \r\n", "SET r1 3 at=1 ifver=2\nabc\n",
	"FOO\n", "SET bad! 3\nxyz\n", "\n", "WRITE 9\n123456789\n", "PING\n",
	"GET " + strings.Repeat("a", 40) + "\n", "WRITE 2\nabc\n", "LIST\n",
	"CREATE r2 size=10 layout=raw\n", "WATCH r2 from=3\n", "RE\x00AD\n", "QUIT\n",
	"WRITE 8\r\n\r\n\r\n\r\n\r\n\r\n", "LOCK r1 wait=0\n", "SET r1 3 fence=7\nabc\n",
	"RENEW r1 7 lease=900\n", "LOCK r1 lease=0\n", "LOCK r1 lease=5000 wait=10\n", "SET r1 2 fence=x\nhi\n",
	"UNLOCK r1 7\n", "INFO\n", "WRITE 3\nab",
}, "")

// TestParserByteByByte feeds a stream one more byte per call (and in other
// steps) and checks that it parses as it does in one piece.
func TestParserByteByByte(t *testing.T) {
	for _, lim := range []Limits{DefaultLimits(), small} {
		whole, err := parseStream(NewParser(lim), []byte(stream), 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(whole) < 15 || whole[len(whole)-1] != "incomplete" {
			t.Fatalf("whole stream: %q", whole)
		}
		for _, step := range []int{1, 2, 3, 7, 64} {
			got, err := parseStream(NewParser(lim), []byte(stream), step)
			if err != nil {
				t.Fatalf("step=%d: %v", step, err)
			}
			if strings.Join(got, "\n") != strings.Join(whole, "\n") {
				t.Errorf("limits=%+v step=%d:\n%s\nwant\n%s", lim, step, strings.Join(got, "\n"), strings.Join(whole, "\n"))
			}
		}
	}
}

// TestParserStreamEvents pins what the mixed stream parses to.
func TestParserStreamEvents(t *testing.T) {
	got, err := parseStream(NewParser(small), []byte(stream), 0)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		`READ`,
		`WRITE payload="hello"`,
		`GET id="r1" range=true,4`,
		`SET id="r1" payload="abc" at=true,1 ifver=true,2`,
		`error unknown_command "unknown command" offset=0 snippet="FOO"`,
		`error bad_id "invalid region id" offset=4 snippet="bad!"`,
		`error too_large "payload too large" offset=6 snippet="9"`,
		`PING`,
		`error line_too_long "command line too long" offset=0 snippet="GET aaaaaaaaaaaaaaaaaaaa"`,
		`error bad_request "payload not followed by newline" offset=10 snippet="c"`,
		`LIST`,
		`error line_too_long "command line too long" offset=0 snippet="CREATE r2 size=10 layout"`,
		`WATCH id="r2" from=true,3`,
		`error bad_request "invalid byte in command line" offset=2 snippet="\x00"`,
		`QUIT`,
		`WRITE payload="\r\n\r\n\r\n\r\n"`,
		`LOCK id="r1" wait=true,0`,
		`SET id="r1" payload="abc" fence=true,7`,
		`RENEW id="r1" lease=true,900 token=7`,
		`error bad_request "lease must be positive" offset=8 snippet="lease=0"`,
		`error line_too_long "command line too long" offset=0 snippet="LOCK r1 lease=5000 wait="`,
		`error bad_request "malformed fencing token" offset=9 snippet="fence=x"`,
		`UNLOCK id="r1" token=7`,
		`INFO`,
		`incomplete`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("stream events:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestParserPipelined parses one buffer holding many requests.
func TestParserPipelined(t *testing.T) {
	var buf []byte
	var want []string
	for i := 0; i < 1000; i++ {
		id := []byte("r" + strconv.Itoa(i%37))
		payload := bytes.Repeat([]byte{byte(i)}, i%300)
		token := uint64(i) << 40
		switch i % 8 {
		case 0:
			buf = AppendSet(buf, id, payload, SetOptions{HasIfVer: true, IfVersion: uint64(i)})
			want = append(want, fmtReq(Request{Cmd: CmdSet, ID: id, Payload: payload, HasIfVer: true, IfVersion: uint64(i)}))
		case 1:
			buf = AppendGetRange(buf, id, int64(i), int64(i*2))
			want = append(want, fmtReq(Request{Cmd: CmdGet, ID: id, HasRange: true, Offset: int64(i), Length: int64(i * 2)}))
		case 2:
			buf = AppendWrite(buf, payload)
			want = append(want, fmtReq(Request{Cmd: CmdWrite, Payload: payload}))
		case 3:
			buf = AppendRead(buf)
			want = append(want, fmtReq(Request{Cmd: CmdRead}))
		case 4:
			buf = AppendPing(buf)
			want = append(want, fmtReq(Request{Cmd: CmdPing}))
		case 5:
			buf = AppendLock(buf, id, LockOptions{Lease: int64(i), Wait: int64(i % 3), HasLease: true, HasWait: true})
			want = append(want, fmtReq(Request{Cmd: CmdLock, ID: id, Lease: int64(i), HasLease: true, Wait: int64(i % 3), HasWait: true}))
		case 6:
			buf = AppendSet(buf, id, payload, SetOptions{HasFence: true, Fence: token, HasAt: true, At: 1})
			want = append(want, fmtReq(Request{Cmd: CmdSet, ID: id, Payload: payload, HasFence: true, Fence: token, HasAt: true, Offset: 1}))
		case 7:
			buf = AppendRenew(buf, id, token, int64(i))
			buf = AppendUnlock(buf, id, token)
			want = append(want,
				fmtReq(Request{Cmd: CmdRenew, ID: id, Token: token, HasLease: true, Lease: int64(i)}),
				fmtReq(Request{Cmd: CmdUnlock, ID: id, Token: token}))
		}
	}
	p := NewParser(DefaultLimits())
	for i, w := range want {
		req, n, err := p.Next(buf)
		if err != nil || n == 0 {
			t.Fatalf("request %d: Next = %d, %v", i, n, err)
		}
		if got := fmtReq(req); got != w {
			t.Fatalf("request %d: got %s, want %s", i, got, w)
		}
		buf = buf[n:]
	}
	if len(buf) != 0 {
		t.Errorf("%d bytes left over", len(buf))
	}
}

func TestParserAllocs(t *testing.T) {
	payload := bytes.Repeat([]byte("x"), 4096)
	tests := []struct {
		name string
		in   []byte
	}{
		{"READ", AppendRead(nil)},
		{"WRITE", AppendWrite(nil, payload)},
		{"GET", AppendGet(nil, []byte("region-1"))},
		{"GET/range", AppendGetRange(nil, []byte("region-1"), 10, 100)},
		{"SET", AppendSet(nil, []byte("region-1"), payload, SetOptions{HasAt: true, At: 5, HasIfVer: true, IfVersion: 9, ClientID: []byte("c1"), Seq: 3})},
		{"SET/fence", AppendSet(nil, []byte("region-1"), payload, SetOptions{HasFence: true, Fence: 1<<64 - 1})},
		{"CREATE", AppendCreate(nil, []byte("region-1"), CreateOptions{Size: 4096, Layout: "raw", Durable: true})},
		{"LOCK", AppendLock(nil, []byte("region-1"), LockOptions{Lease: 10000, Wait: 5000, HasLease: true, HasWait: true})},
		{"RENEW", AppendRenew(nil, []byte("region-1"), 1<<40, 10000)},
		{"UNLOCK", AppendUnlock(nil, []byte("region-1"), 1<<40)},
		{"SET/partial", AppendSet(nil, []byte("region-1"), payload, SetOptions{})[:100]},
		{"discard", []byte("WRITE 99999999999\n")},
	}
	for _, tt := range tests {
		t.Run("cmd="+tt.name, func(t *testing.T) {
			p := NewParser(DefaultLimits())
			if tt.name == "discard" {
				if _, _, err := p.Next(tt.in); err == nil {
					t.Fatal("no error for a too-large payload")
				}
			}
			allocs := testing.AllocsPerRun(100, func() {
				if _, _, err := p.Next(tt.in); err != nil {
					t.Fatal(err)
				}
			})
			if allocs != 0 {
				t.Errorf("Next(%s) allocates %v times, want 0", tt.name, allocs)
			}
		})
	}
}

func TestCmdString(t *testing.T) {
	for c := CmdNone; c < numCmds; c++ {
		s := c.String()
		if s == "" || s != strings.ToUpper(s) {
			t.Errorf("Cmd(%d).String() = %q", c, s)
		}
		if c != CmdNone && lookupCmd([]byte(strings.ToLower(s))) != c {
			t.Errorf("lookupCmd(%q) != %v", strings.ToLower(s), c)
		}
	}
	if got := Cmd(200).String(); got != "Cmd(200)" {
		t.Errorf("Cmd(200).String() = %q", got)
	}
}

func TestValidID(t *testing.T) {
	tests := []struct {
		id   string
		want bool
	}{
		{"a", true}, {"A", true}, {"0", true}, {"a.b_c-d", true}, {"9-", true},
		{strings.Repeat("z", 64), true}, {strings.Repeat("z", 65), false},
		{"", false}, {"-a", false}, {".a", false}, {"_a", false}, {"a b", false},
		{"a/b", false}, {"a\x00", false}, {"é", false}, {"a:b", false}, {"a+b", false},
	}
	for _, tt := range tests {
		if got := ValidID([]byte(tt.id)); got != tt.want {
			t.Errorf("ValidID(%q) = %v, want %v", tt.id, got, tt.want)
		}
	}
}

func TestParseNumbers(t *testing.T) {
	tests := []struct {
		in  string
		u   uint64
		uok bool
		iok bool
	}{
		{"0", 0, true, true},
		{"007", 7, true, true},
		{"9223372036854775807", 1<<63 - 1, true, true},
		{"9223372036854775808", 1 << 63, true, false},
		{"18446744073709551615", 1<<64 - 1, true, false},
		{"18446744073709551616", 0, false, false},
		{"99999999999999999999", 0, false, false},
		{"", 0, false, false},
		{"+1", 0, false, false},
		{"-1", 0, false, false},
		{"1 ", 0, false, false},
		{"１", 0, false, false},
	}
	for _, tt := range tests {
		u, ok := parseUint64([]byte(tt.in))
		if u != tt.u || ok != tt.uok {
			t.Errorf("parseUint64(%q) = %d, %v; want %d, %v", tt.in, u, ok, tt.u, tt.uok)
		}
		if _, ok := parseInt64([]byte(tt.in)); ok != tt.iok {
			t.Errorf("parseInt64(%q) ok = %v, want %v", tt.in, ok, tt.iok)
		}
	}
}

func TestLimitsDefaults(t *testing.T) {
	if got := DefaultLimits(); got.MaxLine != 4096 || got.MaxPayload != 1<<30+64<<10 {
		t.Errorf("DefaultLimits() = %+v", got)
	}
	p := NewParser(Limits{})
	if p.lim != DefaultLimits() {
		t.Errorf("NewParser(Limits{}) limits = %+v, want the defaults", p.lim)
	}
}
