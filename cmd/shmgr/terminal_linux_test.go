package main_test

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/shmgr/shmgr/internal/shmtest"
)

// openPTY opens a pseudo-terminal pair: the program gets pts as its
// terminal, the test reads what it prints from ptmx.
func openPTY(t *testing.T) (ptmx, pts *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals here (%v): cannot check what read prints on a terminal", err)
	}
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		m.Close()
		t.Fatalf("unlockpt: %v", err)
	}
	n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		m.Close()
		t.Fatalf("ptsname: %v", err)
	}
	s, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		m.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close(); m.Close() })
	return m, s
}

// TestCLIReadTerminal: read adds a newline on a terminal (so that the
// prompt does not stick to the content), and only there: into a pipe or
// /dev/null it prints exactly the stored bytes. write prompts for Ctrl-D
// only when standard input is a terminal.
func TestCLIReadTerminal(t *testing.T) {
	t.Parallel()
	h := startHost(t)
	for _, tt := range []struct{ content, want string }{
		{"no newline", "no newline\r\n"}, // the terminal turns \n into \r\n
		{"ends with one\n", "ends with one\r\n"},
	} {
		h.MustCLI(t, "write", tt.content)
		ptmx, pts := openPTY(t)
		cmd := exec.Command(shmtest.Binary(t), "read", "--host", h.Addr)
		cmd.Env = append(os.Environ(), "SHMGR_HOST=", "SHMGR_DATA_DIR=")
		cmd.Stdout, cmd.Stderr = pts, pts
		if err := cmd.Run(); err != nil {
			t.Fatalf("read on a terminal: %v", err)
		}
		pts.Close()
		ptmx.SetReadDeadline(time.Now().Add(5 * time.Second))
		var out bytes.Buffer
		io.Copy(&out, ptmx) // ends with EIO once the terminal is closed and drained
		if out.String() != tt.want {
			t.Errorf("read of %q on a terminal printed %q, want %q", tt.content, out.String(), tt.want)
		}
		// Not a terminal: exactly the bytes.
		if got := readContent(t, h, ""); got != tt.content {
			t.Errorf("read of %q into a pipe printed %q", tt.content, got)
		}
	}
	// /dev/null as standard output is no terminal either: exit 0, and
	// nothing to see; as standard input it gets no Ctrl-D prompt (see
	// TestCLIEmptyContent), while a terminal does.
	ptmx, pts := openPTY(t)
	cmd := exec.Command(shmtest.Binary(t), "write", "--host", h.Addr)
	cmd.Env = append(os.Environ(), "SHMGR_HOST=", "SHMGR_DATA_DIR=")
	cmd.Stdin, cmd.Stderr = pts, pts
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ptmx.Write([]byte("typed\n\x04")) // a line, then Ctrl-D
	if err := cmd.Wait(); err != nil {
		t.Fatalf("write from a terminal: %v", err)
	}
	pts.Close()
	ptmx.SetReadDeadline(time.Now().Add(5 * time.Second))
	var echo bytes.Buffer
	io.Copy(&echo, ptmx)
	if !strings.Contains(echo.String(), "end it with Ctrl-D") {
		t.Errorf("write from a terminal did not prompt for Ctrl-D; the terminal shows %q", echo.String())
	}
	if got := readContent(t, h, ""); got != "typed\n" {
		t.Errorf("after write from a terminal, read = %q, want \"typed\\n\"", got)
	}
}
