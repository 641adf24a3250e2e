// Package resp is the Redis serialization protocol (RESP2 and RESP3) as
// the host's RESP listener speaks it: a request Parser (multibulk arrays
// and inline commands), the Append* reply encoders, a reply parser for
// tests and tools, the mapping between Redis keys and region ids, and
// Redis's glob matching for KEYS, SCAN and PSUBSCRIBE. It does no I/O and
// knows nothing of sockets or regions, so it can be fuzzed alone, like
// internal/proto beside it.
//
// # Parsing
//
// Parser.Next is a pure function of a byte slice: the caller owns
// reading. It returns the number of bytes one command took; 0 and no
// error means the command is incomplete (Parser.Need then says how many
// bytes it needs in all, when a bulk length has told). A command with no
// arguments (an empty inline line, "*0") is skipped: its Args are empty.
// On the success path nothing allocates once the Command's Args slice
// has grown to the largest command seen.
//
// A protocol error is fatal to the connection, as it is for Redis: the
// stream cannot be resynchronised reliably, so the host answers the
// error and hangs up.
//
// # Encoding
//
// The Append* functions append one reply to dst and return the extended
// slice, like strconv.AppendInt. Those whose RESP2 and RESP3 forms differ
// (null, maps, sets, pushes, verbatim strings) take the protocol version.
//
// # Caveats
//
// The Args of a Command alias the buffer given to Next (inline commands
// with quotes are unescaped in place, in that buffer). They are valid only
// until the buffer is modified; copy what must live longer. A Parser is
// not safe for concurrent use: use one per connection.
package resp
