package proto

import (
	"errors"
	"fmt"
	"strings"
)

// fmtReq renders every field of r, so two requests compare equal exactly
// when their renderings do, and a failure shows the difference.
func fmtReq(r Request) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%v", r.Cmd)
	if r.ID != nil {
		fmt.Fprintf(&b, " id=%q", r.ID)
	}
	if r.Payload != nil {
		fmt.Fprintf(&b, " payload=%q", r.Payload)
	}
	if r.HasRange || r.Length != 0 {
		fmt.Fprintf(&b, " range=%v,%d", r.HasRange, r.Length)
	}
	if r.HasAt || r.Offset != 0 {
		fmt.Fprintf(&b, " at=%v,%d", r.HasAt, r.Offset)
	}
	if r.HasIfVer || r.IfVersion != 0 {
		fmt.Fprintf(&b, " ifver=%v,%d", r.HasIfVer, r.IfVersion)
	}
	if r.ClientID != nil || r.Seq != 0 {
		fmt.Fprintf(&b, " cid=%q seq=%d", r.ClientID, r.Seq)
	}
	if r.HasFrom || r.From != 0 {
		fmt.Fprintf(&b, " from=%v,%d", r.HasFrom, r.From)
	}
	if r.Delta {
		b.WriteString(" delta")
	}
	if r.Consistent {
		b.WriteString(" consistent")
	}
	if r.Size != 0 {
		fmt.Fprintf(&b, " size=%d", r.Size)
	}
	if r.MaxWrite != 0 {
		fmt.Fprintf(&b, " max_write=%d", r.MaxWrite)
	}
	if r.Layout != nil {
		fmt.Fprintf(&b, " layout=%q", r.Layout)
	}
	if r.Durable {
		b.WriteString(" durable")
	}
	if r.HasLease || r.Lease != 0 {
		fmt.Fprintf(&b, " lease=%v,%d", r.HasLease, r.Lease)
	}
	if r.HasWait || r.Wait != 0 {
		fmt.Fprintf(&b, " wait=%v,%d", r.HasWait, r.Wait)
	}
	if r.Token != 0 {
		fmt.Fprintf(&b, " token=%d", r.Token)
	}
	if r.HasFence || r.Fence != 0 {
		fmt.Fprintf(&b, " fence=%v,%d", r.HasFence, r.Fence)
	}
	if r.Cluster != ClusterNone {
		fmt.Fprintf(&b, " cluster=%v", r.Cluster)
	}
	if r.Addr != nil {
		fmt.Fprintf(&b, " addr=%q", r.Addr)
	}
	if r.Fingerprint != nil {
		fmt.Fprintf(&b, " fp=%q", r.Fingerprint)
	}
	return b.String()
}

// fmtReply renders every field of r.
func fmtReply(r Reply) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%v", r.Kind)
	if r.Text != nil {
		fmt.Fprintf(&b, " text=%q", r.Text)
	}
	if r.Code != CodeUnknown {
		fmt.Fprintf(&b, " code=%v", r.Code)
	}
	if r.Version != 0 {
		fmt.Fprintf(&b, " version=%d", r.Version)
	}
	if c := r.Conflict; c != (ConflictFields{}) {
		fmt.Fprintf(&b, " conflict=%+v", c)
	}
	if r.ID != nil {
		fmt.Fprintf(&b, " id=%q", r.ID)
	}
	if r.Size != 0 || r.Offset != 0 {
		fmt.Fprintf(&b, " size=%d off=%d", r.Size, r.Offset)
	}
	if r.Payload != nil {
		fmt.Fprintf(&b, " payload=%q", r.Payload)
	}
	return b.String()
}

// fmtErr renders a parse error with all its fields.
func fmtErr(err error) string {
	var e *Error
	if !errors.As(err, &e) {
		return fmt.Sprintf("non-proto error %T %v", err, err)
	}
	return fmt.Sprintf("error %v %q offset=%d snippet=%q", e.Code, e.Msg, e.Offset, e.Snippet)
}

// parseStream parses all of data with p, as a connection loop would, and
// returns one line per request (not CmdNone) or error. The buffer given to
// Next starts at the first unconsumed byte and grows step bytes at a time
// when Next asks for more (step 0: all of data at once). A request left
// incomplete at the end is reported as "incomplete". It checks the Next
// contract on the way: 0 <= n <= len(buf), n > 0 on error.
func parseStream(p *Parser, data []byte, step int) ([]string, error) {
	var events []string
	start, end := 0, len(data)
	if step > 0 {
		end = min(step, len(data))
	}
	for start < len(data) {
		buf := data[start:end]
		req, n, err := p.Next(buf)
		if n < 0 || n > len(buf) {
			return events, fmt.Errorf("at %d: Next(%d bytes) consumed %d", start, len(buf), n)
		}
		if err != nil && n == 0 {
			return events, fmt.Errorf("at %d: Next consumed nothing with error %v", start, err)
		}
		if n == 0 {
			if end == len(data) {
				events = append(events, "incomplete")
				break
			}
			if need := p.Need(); need != 0 && need <= int64(len(buf)) {
				return events, fmt.Errorf("at %d: Need() = %d with %d bytes buffered", start, need, len(buf))
			}
			end = min(end+max(step, 1), len(data))
			continue
		}
		switch {
		case err != nil:
			events = append(events, fmtErr(err))
		case req.Cmd != CmdNone:
			events = append(events, fmtReq(req))
		}
		start += n
	}
	return events, nil
}

// parseReplies is parseStream for replies. A malformed reply ends the
// stream, as it ends a connection.
func parseReplies(p *ReplyParser, data []byte, step int) ([]string, error) {
	var events []string
	start, end := 0, len(data)
	if step > 0 {
		end = min(step, len(data))
	}
	for start < len(data) {
		buf := data[start:end]
		r, n, err := p.Next(buf)
		if n < 0 || n > len(buf) {
			return events, fmt.Errorf("at %d: Next(%d bytes) consumed %d", start, len(buf), n)
		}
		if err != nil {
			if n != 0 {
				return events, fmt.Errorf("at %d: Next consumed %d with error %v", start, n, err)
			}
			events = append(events, fmtErr(err))
			break
		}
		if n == 0 {
			if end == len(data) {
				events = append(events, "incomplete")
				break
			}
			if need := p.Need(); need != 0 && need <= int64(len(buf)) {
				return events, fmt.Errorf("at %d: Need() = %d with %d bytes buffered", start, need, len(buf))
			}
			end = min(end+max(step, 1), len(data))
			continue
		}
		events = append(events, fmtReply(r))
		start += n
	}
	return events, nil
}
