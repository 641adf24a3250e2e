// Package proto is shmgr's wire format: the request Parser, the reply
// Parser, the metadata line and the Append* encoders. It does no I/O and
// knows nothing of sockets or regions, so it can be fuzzed alone.
// docs/PROTOCOL.md describes the format itself.
//
// A connection starts with the host sending one metadata line (Meta, a
// JSON object and '\n'). Then the client sends requests, each a command
// line of space-separated tokens ended by '\n', some followed by a payload
// of announced length and a '\n'; the host answers each in order.
//
// # Parsing
//
// Parser.Next and ReplyParser.Next are pure functions of a byte slice (plus
// a little state to resynchronize after errors): the caller owns reading.
// A host connection loop looks like this:
//
//	p := proto.NewParser(proto.DefaultLimits())
//	for {
//		req, n, err := p.Next(buf)
//		if n == 0 && err == nil {
//			// incomplete: read more into buf (p.Need says how much, if known)
//			continue
//		}
//		buf = buf[n:]
//		var perr *proto.Error
//		if errors.As(err, &perr) {
//			out = proto.AppendError(out, perr.Code, perr.Error())
//			continue
//		}
//		if req.Cmd == proto.CmdNone {
//			continue // empty line, or the rest of a bad request discarded
//		}
//		out = handle(out, req)
//	}
//
// On the success path nothing allocates: Next returns requests whose
// slices point into the buffer, and the encoders only append to dst.
//
// # Encoding
//
// The Append* functions append one complete frame to dst and return the
// extended slice, like strconv.AppendInt. They never allocate beyond growing
// dst, and they do not validate: ids must pass ValidID and numbers must be in
// range, or the peer rejects the frame. AppendMeta is the exception: it
// allocates (it runs once per connection).
//
// # Errors
//
// Errors cross the wire as a Code, a stable append-only enum. Parse errors
// are *Error values with the code, a message, the offset and a bounded
// snippet of the input; they wrap ErrMalformed, ErrUnknownCommand,
// ErrLineTooLong, ErrTooLarge or ErrBadID.
//
// # Caveats
//
// The slices in a Request or Reply alias the buffer given to Next. They are
// valid only until that buffer is modified (compacted, refilled, reused);
// copy what must live longer.
//
// Parser and ReplyParser are not safe for concurrent use: use one per
// connection.
package proto
