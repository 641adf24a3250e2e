package server

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/shmgr/shmgr/internal/proto"
	"github.com/shmgr/shmgr/internal/resp"
)

// respInfoSections are INFO's sections, in order.
var respInfoSections = []string{"server", "clients", "persistence", "stats", "replication", "keyspace"}

// respInfo serves INFO [section ...]: Redis's field names where a client
// reads them (ioredis's ready check reads loading:), shmgr's figures.
func (c *conn) respInfo(args [][]byte) {
	want := map[string]bool{}
	for _, a := range args {
		s := strings.ToLower(string(a))
		switch s {
		case "all", "default", "everything":
			for _, n := range respInfoSections {
				want[n] = true
			}
		default:
			want[s] = true
		}
	}
	if len(args) == 0 {
		for _, n := range respInfoSections {
			want[n] = true
		}
	}
	var b strings.Builder
	section := func(name string, fields ...string) {
		if !want[strings.ToLower(name)] {
			return
		}
		if b.Len() > 0 {
			b.WriteString("\r\n")
		}
		b.WriteString("# " + name + "\r\n")
		for i := 0; i+1 < len(fields); i += 2 {
			b.WriteString(fields[i] + ":" + fields[i+1] + "\r\n")
		}
	}
	up := time.Since(c.s.started)
	port := ""
	if a, ok := c.nc.LocalAddr().(interface{ String() string }); ok {
		if i := strings.LastIndexByte(a.String(), ':'); i >= 0 {
			port = a.String()[i+1:]
		}
	}
	itoa := strconv.Itoa
	section("Server",
		"redis_version", respVersion,
		"shmgr_version", c.s.cfg.ServerName,
		"redis_mode", "standalone",
		"os", runtime.GOOS,
		"arch_bits", itoa(strconv.IntSize),
		"process_id", itoa(os.Getpid()),
		"run_id", c.s.dedup.sessionID(),
		"tcp_port", port,
		"uptime_in_seconds", itoa(int(up/time.Second)),
		"uptime_in_days", itoa(int(up/(24*time.Hour))),
	)
	section("Clients",
		"connected_clients", itoa(c.s.Connections()),
		"maxclients", itoa(c.s.cfg.MaxConns),
	)
	section("Persistence",
		"loading", "0",
		"async_loading", "0",
		"rdb_bgsave_in_progress", "0",
		"aof_enabled", "0",
	)
	section("Stats",
		"total_connections_received", strconv.FormatUint(c.s.accepted.Load(), 10),
	)
	section("Replication",
		"role", "master",
		"connected_slaves", "0",
	)
	if want["keyspace"] {
		if n := len(c.respKeys()); n > 0 {
			section("Keyspace", "db0", fmt.Sprintf("keys=%d,expires=0,avg_ttl=0", n))
		} else {
			section("Keyspace")
		}
	}
	c.out = resp.AppendVerbatim(c.out, c.resp.proto, b.String())
}

// respConfigValues are the settings CONFIG GET answers: what clients and
// tools ask before they start (redis-benchmark asks for save and
// appendonly).
var respConfigValues = [][2]string{{"appendonly", "no"}, {"databases", "1"}, {"save", ""}}

func (c *conn) respConfig(args [][]byte) {
	switch strings.ToUpper(string(args[1])) {
	case "GET":
		if len(args) < 3 {
			c.respErr(proto.CodeBadRequest, "ERR wrong number of arguments for 'config|get' command")
			return
		}
		var pairs [][2]string
		for _, kv := range respConfigValues {
			for _, p := range args[2:] {
				if resp.Match([]byte(strings.ToLower(string(p))), []byte(kv[0])) {
					pairs = append(pairs, kv)
					break
				}
			}
		}
		c.out = resp.AppendMap(c.out, c.resp.proto, len(pairs))
		for _, kv := range pairs {
			c.out = resp.AppendBulkString(c.out, kv[0])
			c.out = resp.AppendBulkString(c.out, kv[1])
		}
	case "SET", "RESETSTAT", "REWRITE":
		c.respErr(proto.CodeBadRequest, "ERR CONFIG "+strings.ToUpper(string(args[1]))+" is not supported by shmgr: set the host's limits with the flags of shmgr host")
	default:
		c.respErr(proto.CodeBadRequest, fmt.Sprintf("ERR unknown subcommand '%.128s'. Try CONFIG HELP.", args[1]))
	}
}

// respCommandCmd serves COMMAND, COMMAND COUNT, COMMAND INFO and
// COMMAND DOCS.
func (c *conn) respCommandCmd(args [][]byte) {
	rc := c.resp
	if len(args) == 1 {
		c.out = resp.AppendArray(c.out, int(numRESPCmds))
		for i := range respSpecs {
			c.respCommandInfo(&respSpecs[i])
		}
		return
	}
	switch strings.ToUpper(string(args[1])) {
	case "COUNT":
		c.out = resp.AppendInt(c.out, int64(numRESPCmds))
	case "INFO":
		c.out = resp.AppendArray(c.out, len(args)-2)
		for _, n := range args[2:] {
			if id, ok := respLookup(n); ok {
				c.respCommandInfo(&respSpecs[id])
			} else {
				c.out = resp.AppendNull(c.out, rc.proto)
			}
		}
	case "DOCS":
		var specs []*respSpec
		if len(args) == 2 {
			for i := range respSpecs {
				specs = append(specs, &respSpecs[i])
			}
		} else {
			for _, n := range args[2:] {
				if id, ok := respLookup(n); ok {
					specs = append(specs, &respSpecs[id])
				}
			}
		}
		c.out = resp.AppendMap(c.out, rc.proto, len(specs))
		for _, sp := range specs {
			c.out = resp.AppendBulkString(c.out, sp.name)
			c.out = resp.AppendMap(c.out, rc.proto, 3)
			c.out = resp.AppendBulkString(c.out, "summary")
			c.out = resp.AppendBulkString(c.out, sp.summary)
			c.out = resp.AppendBulkString(c.out, "since")
			c.out = resp.AppendBulkString(c.out, "1.0.0")
			c.out = resp.AppendBulkString(c.out, "group")
			c.out = resp.AppendBulkString(c.out, sp.group)
		}
	default:
		c.respErr(proto.CodeBadRequest, fmt.Sprintf("ERR unknown subcommand '%.128s'. Try COMMAND HELP.", args[1]))
	}
}

// respCommandInfo appends one command's COMMAND entry, in Redis 7's
// form: name, arity, flags, first key, last key, step, ACL categories,
// tips, key specs, subcommands.
func (c *conn) respCommandInfo(sp *respSpec) {
	rc := c.resp
	c.out = resp.AppendArray(c.out, 10)
	c.out = resp.AppendBulkString(c.out, sp.name)
	c.out = resp.AppendInt(c.out, int64(sp.arity))
	c.out = resp.AppendSet(c.out, rc.proto, len(sp.flags))
	for _, f := range sp.flags {
		c.out = resp.AppendSimple(c.out, f)
	}
	c.out = resp.AppendInt(c.out, int64(sp.first))
	c.out = resp.AppendInt(c.out, int64(sp.last))
	c.out = resp.AppendInt(c.out, int64(sp.step))
	c.out = resp.AppendSet(c.out, rc.proto, 1)
	c.out = resp.AppendSimple(c.out, "@"+sp.group)
	c.out = resp.AppendArray(c.out, 0)
	c.out = resp.AppendArray(c.out, 0)
	c.out = resp.AppendArray(c.out, 0)
}
