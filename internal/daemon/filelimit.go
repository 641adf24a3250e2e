package daemon

import (
	"fmt"
	"log/slog"
)

// fileReserve is the open files a host keeps for itself beside its
// connections: listeners, the registry's and tokens' saves, durable
// regions, metrics, logs.
const fileReserve = 64

// connLimit raises the open-file limit as far as it goes and returns how
// many connections the host can serve: want, or fewer if the limit does
// not allow them (said in a warning). Connections past it get "ERROR
// limit", not a wait in the accept backlog.
func connLimit(want int, logger *slog.Logger) int {
	limit, err := raiseFileLimit()
	if err != nil {
		logger.Warn(fmt.Sprintf("could not raise the open-file limit to its hard limit: %v", err))
	}
	if limit >= uint64(want)+fileReserve {
		return want
	}
	n := 1
	if limit > 2*fileReserve {
		n = int(limit - fileReserve)
	} else if limit > 1 {
		n = int(limit / 2)
	}
	logger.Warn(fmt.Sprintf("the open-file limit is %d, too low for --max-connections %d: serving at most %d connections (the others get ERROR limit); raise the hard limit (ulimit -Hn, systemd LimitNOFILE=) to serve more", limit, want, n))
	return n
}
