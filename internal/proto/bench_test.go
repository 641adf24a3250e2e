package proto

import "testing"

func BenchmarkParser(b *testing.B) {
	benches := []struct {
		name string
		in   []byte
	}{
		{"cmd=READ", AppendRead(nil)},
		{"cmd=WRITE/size=4KiB", AppendWrite(nil, payload4k)},
		{"cmd=SET/size=4KiB", AppendSet(nil, id4k, payload4k, SetOptions{HasIfVer: true, IfVersion: 42, ClientID: []byte("client-1"), Seq: 7})},
		{"cmd=GET/range", AppendGetRange(nil, id4k, 128, 4096)},
		{"cmd=LOCK", AppendLock(nil, id4k, LockOptions{Lease: 10000, Wait: 5000, HasLease: true, HasWait: true})},
		{"cmd=SET/fence/size=4KiB", AppendSet(nil, id4k, payload4k, SetOptions{HasFence: true, Fence: 1 << 40})},
	}
	for _, bb := range benches {
		b.Run(bb.name, func(b *testing.B) {
			p := NewParser(DefaultLimits())
			b.ReportAllocs()
			b.SetBytes(int64(len(bb.in)))
			for b.Loop() {
				if _, n, err := p.Next(bb.in); n != len(bb.in) || err != nil {
					b.Fatalf("Next = %d, %v", n, err)
				}
			}
		})
	}
}

func BenchmarkReplyParser(b *testing.B) {
	in := AppendValue(nil, 12345, payload4k)
	p := NewReplyParser(0, 0)
	b.ReportAllocs()
	b.SetBytes(int64(len(in)))
	for b.Loop() {
		if _, n, err := p.Next(in); n != len(in) || err != nil {
			b.Fatalf("Next = %d, %v", n, err)
		}
	}
}

func BenchmarkAppendValue(b *testing.B) {
	b.Run("size=4KiB", func(b *testing.B) {
		dst := make([]byte, 0, len(payload4k)+64)
		b.ReportAllocs()
		b.SetBytes(int64(len(payload4k)))
		for b.Loop() {
			dst = AppendValue(dst[:0], 12345, payload4k)
		}
	})
}
