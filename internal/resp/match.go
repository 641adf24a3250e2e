package resp

// Match reports whether s matches the glob pattern, with Redis's rules
// (KEYS, SCAN MATCH, PSUBSCRIBE): '*' any run of bytes, '?' one byte,
// "[abc]", "[^abc]" and "[a-z]" one byte from (or not from) a class, and
// '\' quoting the next byte. It runs in O(len(pattern) * len(s)) at
// worst: one '*' is backtracked to at a time.
func Match(pattern, s []byte) bool {
	p, i := 0, 0
	star, mark := -1, 0
	for i < len(s) {
		if p < len(pattern) {
			switch pattern[p] {
			case '*':
				for p < len(pattern) && pattern[p] == '*' {
					p++
				}
				if p == len(pattern) {
					return true
				}
				star, mark = p, i
				continue
			case '?':
				p, i = p+1, i+1
				continue
			default:
				if np, ok := single(pattern, p, s[i]); ok {
					p, i = np, i+1
					continue
				}
			}
		}
		if star < 0 {
			return false
		}
		mark++
		p, i = star, mark
	}
	for p < len(pattern) && pattern[p] == '*' {
		p++
	}
	return p == len(pattern)
}

// single matches byte c against the one-byte token at pattern[p] (a
// class, an escape or a literal) and returns the position after it.
func single(pattern []byte, p int, c byte) (int, bool) {
	switch pattern[p] {
	case '\\':
		if p+1 < len(pattern) {
			return p + 2, pattern[p+1] == c
		}
		return p + 1, c == '\\'
	case '[':
		q := p + 1
		not := q < len(pattern) && pattern[q] == '^'
		if not {
			q++
		}
		found := false
		for q < len(pattern) && pattern[q] != ']' {
			switch {
			case pattern[q] == '\\' && q+1 < len(pattern):
				q++
				if pattern[q] == c {
					found = true
				}
				q++
			case q+2 < len(pattern) && pattern[q+1] == '-':
				lo, hi := pattern[q], pattern[q+2]
				if lo > hi {
					lo, hi = hi, lo
				}
				if lo <= c && c <= hi {
					found = true
				}
				q += 3
			default:
				if pattern[q] == c {
					found = true
				}
				q++
			}
		}
		if q < len(pattern) {
			q++ // the ']'
		}
		return q, found != not
	}
	return p + 1, pattern[p] == c
}
