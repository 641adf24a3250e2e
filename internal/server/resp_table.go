package server

// respFamily groups RESP commands for metrics: the shmgr protocol's
// commands take the first indexes of the request tables, and a family
// per group of RESP commands follows them (metrics.MaxKinds bounds the
// total).
type respFamily uint8

// RESP command families.
const (
	respFamilyConn   respFamily = iota // HELLO AUTH PING ECHO QUIT SELECT CLIENT
	respFamilyServer                   // INFO CONFIG COMMAND DBSIZE
	respFamilyGet                      // GET GETRANGE STRLEN EXISTS TYPE
	respFamilySet                      // SET SETRANGE
	respFamilyKeys                     // KEYS SCAN
	respFamilyDel                      // DEL
	respFamilyPubSub                   // (P)SUBSCRIBE (P)UNSUBSCRIBE
	respFamilyTx                       // WATCH UNWATCH MULTI EXEC DISCARD EXECWITHETAG EXECIFMATCH
	respFamilyError                    // unknown commands, protocol errors
	numRESPFamilies
)

// respFamilyNames are the families' command labels in metrics.
var respFamilyNames = [numRESPFamilies]string{
	"resp_connection", "resp_server", "resp_get", "resp_set", "resp_keys", "resp_del", "resp_pubsub", "resp_transaction", "resp_error",
}

// respCmdID identifies a RESP command.
type respCmdID uint8

// RESP commands, in the order COMMAND lists them.
const (
	rcAuth respCmdID = iota
	rcClient
	rcCommand
	rcConfig
	rcDBSize
	rcDel
	rcDiscard
	rcEcho
	rcExec
	rcExecIfMatch
	rcExecWithETag
	rcExists
	rcGet
	rcGetRange
	rcHello
	rcInfo
	rcKeys
	rcMulti
	rcPing
	rcPSubscribe
	rcPUnsubscribe
	rcQuit
	rcScan
	rcSelect
	rcSet
	rcSetRange
	rcStrlen
	rcSubscribe
	rcType
	rcUnsubscribe
	rcUnwatch
	rcWatch
	numRESPCmds
)

// respSpec describes a RESP command: for dispatch, and for COMMAND.
type respSpec struct {
	name       string // lower case
	arity      int    // as Redis: n exactly, -n at least n
	max        int    // most arguments, name included (0: no bound)
	flags      []string
	first      int // key positions, as COMMAND reports them
	last, step int
	fam        respFamily
	write      bool // needs a token that may write
	tx         bool // may be queued in MULTI
	pubsub     bool // allowed in RESP2's subscribed mode
	group      string
	summary    string
}

var (
	fRead   = []string{"readonly", "fast"}
	fWrite  = []string{"write", "denyoom"}
	fConn   = []string{"fast", "loading", "stale"}
	fPubSub = []string{"pubsub", "loading", "stale"}
	fTx     = []string{"fast", "loading", "stale"}
)

// respSpecs is the command table, indexed by respCmdID. It is never
// modified.
var respSpecs = [numRESPCmds]respSpec{
	rcAuth:         {name: "auth", arity: -2, max: 3, flags: []string{"noscript", "loading", "stale", "fast", "no_auth"}, fam: respFamilyConn, group: "connection", summary: "Authenticates the connection with a shmgr token."},
	rcClient:       {name: "client", arity: -2, flags: fConn, fam: respFamilyConn, group: "connection", summary: "CLIENT SETNAME, GETNAME, SETINFO and ID."},
	rcCommand:      {name: "command", arity: -1, flags: []string{"loading", "stale"}, fam: respFamilyServer, group: "server", summary: "Returns the commands this listener serves."},
	rcConfig:       {name: "config", arity: -2, flags: []string{"admin", "noscript", "loading", "stale"}, fam: respFamilyServer, group: "server", summary: "CONFIG GET of save, appendonly and databases."},
	rcDBSize:       {name: "dbsize", arity: 1, flags: fRead, fam: respFamilyServer, group: "server", summary: "Returns the number of regions the token sees."},
	rcDel:          {name: "del", arity: -2, flags: []string{"write"}, first: 1, last: -1, step: 1, fam: respFamilyDel, write: true, group: "generic", summary: "Deletes the keys' regions."},
	rcDiscard:      {name: "discard", arity: 1, flags: fTx, fam: respFamilyTx, group: "transactions", summary: "Discards a transaction."},
	rcEcho:         {name: "echo", arity: 2, flags: fConn, fam: respFamilyConn, tx: true, group: "connection", summary: "Returns the given string."},
	rcExec:         {name: "exec", arity: 1, flags: []string{"noscript", "loading", "stale", "skip_slowlog"}, fam: respFamilyTx, group: "transactions", summary: "Executes a transaction on one key, at the version WATCH saw."},
	rcExecIfMatch:  {name: "execifmatch", arity: -4, flags: fWrite, first: 3, last: 3, step: 1, fam: respFamilyTx, write: false, group: "transactions", summary: "EXECIFMATCH version command key [arg ...]: runs the command only if the key's region is at that version; replies [version, reply or nil]."},
	rcExecWithETag: {name: "execwithetag", arity: -3, flags: fWrite, first: 2, last: 2, step: 1, fam: respFamilyTx, write: false, group: "transactions", summary: "EXECWITHETAG command key [arg ...]: runs the command and replies [version, reply]."},
	rcExists:       {name: "exists", arity: -2, flags: fRead, first: 1, last: -1, step: 1, fam: respFamilyGet, tx: true, group: "generic", summary: "Counts the keys that exist."},
	rcGet:          {name: "get", arity: 2, flags: fRead, first: 1, last: 1, step: 1, fam: respFamilyGet, tx: true, group: "string", summary: "Returns the content of the key's region."},
	rcGetRange:     {name: "getrange", arity: 4, flags: []string{"readonly"}, first: 1, last: 1, step: 1, fam: respFamilyGet, tx: true, group: "string", summary: "Returns a substring of the content."},
	rcHello:        {name: "hello", arity: -1, flags: []string{"noscript", "loading", "stale", "fast", "no_auth"}, fam: respFamilyConn, group: "connection", summary: "Chooses RESP2 or RESP3, optionally authenticating."},
	rcInfo:         {name: "info", arity: -1, flags: []string{"loading", "stale"}, fam: respFamilyServer, group: "server", summary: "Returns information about the host."},
	rcKeys:         {name: "keys", arity: 2, flags: []string{"readonly"}, fam: respFamilyKeys, group: "generic", summary: "Returns the keys matching a pattern."},
	rcMulti:        {name: "multi", arity: 1, flags: fTx, fam: respFamilyTx, group: "transactions", summary: "Starts a transaction."},
	rcPing:         {name: "ping", arity: -1, max: 2, flags: []string{"fast"}, fam: respFamilyConn, tx: true, pubsub: true, group: "connection", summary: "Returns PONG."},
	rcPSubscribe:   {name: "psubscribe", arity: -2, flags: fPubSub, fam: respFamilyPubSub, pubsub: true, group: "pubsub", summary: "Subscribes to keyspace channels matching patterns."},
	rcPUnsubscribe: {name: "punsubscribe", arity: -1, flags: fPubSub, fam: respFamilyPubSub, pubsub: true, group: "pubsub", summary: "Unsubscribes from patterns."},
	rcQuit:         {name: "quit", arity: -1, flags: []string{"allow_busy", "noscript", "loading", "stale", "fast", "no_auth"}, fam: respFamilyConn, pubsub: true, group: "connection", summary: "Closes the connection."},
	rcScan:         {name: "scan", arity: -2, flags: []string{"readonly"}, fam: respFamilyKeys, group: "generic", summary: "Iterates over the keys."},
	rcSelect:       {name: "select", arity: 2, flags: fConn, fam: respFamilyConn, group: "connection", summary: "Selects database 0, the only one."},
	rcSet:          {name: "set", arity: -3, flags: fWrite, first: 1, last: 1, step: 1, fam: respFamilySet, write: true, tx: true, group: "string", summary: "Writes the content of the key's region (creating a utf8 region for a new key)."},
	rcSetRange:     {name: "setrange", arity: 4, flags: fWrite, first: 1, last: 1, step: 1, fam: respFamilySet, write: true, tx: true, group: "string", summary: "Overwrites part of the content."},
	rcStrlen:       {name: "strlen", arity: 2, flags: fRead, first: 1, last: 1, step: 1, fam: respFamilyGet, tx: true, group: "string", summary: "Returns the length of the content."},
	rcSubscribe:    {name: "subscribe", arity: -2, flags: fPubSub, fam: respFamilyPubSub, pubsub: true, group: "pubsub", summary: "Subscribes to channels (__keyspace@0__:<key> is pushed on every commit)."},
	rcType:         {name: "type", arity: 2, flags: fRead, first: 1, last: 1, step: 1, fam: respFamilyGet, tx: true, group: "generic", summary: "Returns string, or none for a missing key."},
	rcUnsubscribe:  {name: "unsubscribe", arity: -1, flags: fPubSub, fam: respFamilyPubSub, pubsub: true, group: "pubsub", summary: "Unsubscribes from channels."},
	rcUnwatch:      {name: "unwatch", arity: 1, flags: fTx, fam: respFamilyTx, group: "transactions", summary: "Forgets the watched keys."},
	rcWatch:        {name: "watch", arity: -2, flags: fTx, first: 1, last: -1, step: 1, fam: respFamilyTx, group: "transactions", summary: "Watches keys: EXEC then writes only at the versions seen."},
}

// respLookup finds a command by name, in any case, without allocating.
func respLookup(name []byte) (respCmdID, bool) {
	var up [16]byte
	if len(name) > len(up) {
		return 0, false
	}
	for i, c := range name {
		if 'a' <= c && c <= 'z' {
			c -= 'a' - 'A'
		}
		up[i] = c
	}
	switch string(up[:len(name)]) {
	case "GET":
		return rcGet, true
	case "SET":
		return rcSet, true
	case "PING":
		return rcPing, true
	case "AUTH":
		return rcAuth, true
	case "CLIENT":
		return rcClient, true
	case "COMMAND":
		return rcCommand, true
	case "CONFIG":
		return rcConfig, true
	case "DBSIZE":
		return rcDBSize, true
	case "DEL":
		return rcDel, true
	case "DISCARD":
		return rcDiscard, true
	case "ECHO":
		return rcEcho, true
	case "EXEC":
		return rcExec, true
	case "EXECIFMATCH":
		return rcExecIfMatch, true
	case "EXECWITHETAG":
		return rcExecWithETag, true
	case "EXISTS":
		return rcExists, true
	case "GETRANGE":
		return rcGetRange, true
	case "HELLO":
		return rcHello, true
	case "INFO":
		return rcInfo, true
	case "KEYS":
		return rcKeys, true
	case "MULTI":
		return rcMulti, true
	case "PSUBSCRIBE":
		return rcPSubscribe, true
	case "PUNSUBSCRIBE":
		return rcPUnsubscribe, true
	case "QUIT":
		return rcQuit, true
	case "SCAN":
		return rcScan, true
	case "SELECT":
		return rcSelect, true
	case "SETRANGE":
		return rcSetRange, true
	case "STRLEN":
		return rcStrlen, true
	case "SUBSCRIBE":
		return rcSubscribe, true
	case "TYPE":
		return rcType, true
	case "UNSUBSCRIBE":
		return rcUnsubscribe, true
	case "UNWATCH":
		return rcUnwatch, true
	case "WATCH":
		return rcWatch, true
	}
	return 0, false
}
