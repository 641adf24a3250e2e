package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"time"

	"github.com/spf13/cobra"

	"github.com/shmgr/shmgr/internal/host"
	"github.com/shmgr/shmgr/internal/webui"
	"github.com/shmgr/shmgr/internal/webui/dist"
)

// guiFlags are the gui command's settings.
type guiFlags struct {
	listen      string
	noBrowser   bool
	allowRemote bool
	dataDir     string
	quiet       bool
}

func newGUICmd() *cobra.Command {
	f := &guiFlags{}
	c := &cobra.Command{
		Use:   "gui",
		Short: "Open the web GUI: run a host, or connect to one, from a browser",
		Long: `Serve shmgr's GUI on this machine and open it in the default browser.

Host mode runs a host inside the GUI (as 'shmgr host' does) and shows what a
client needs: the machine's IP addresses, the port and the shm_id. Client
mode connects to a host, here or across the network, mapping the region
directly when it can. In both modes the page shows a region's content live
and writes it under the region's lock, never over a change it has not seen.

The GUI listens on loopback only, on a free port; the URL it prints carries
a token for this launch. Everything it needs is built in: it works offline.
Stop it with Ctrl-C: a host it runs stops too, and its regions stay in place.`,
		Example: `  shmgr gui
  shmgr gui --no-browser --listen 127.0.0.1:8410
  shmgr gui --data-dir /var/lib/shmgr`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, args []string) error {
			return runGUI(c.Context(), f, c.OutOrStdout(), c.ErrOrStderr())
		},
	}
	c.Flags().StringVar(&f.listen, "listen", "127.0.0.1:0", "address of the GUI (port 0 picks a free port; loopback unless --allow-remote)")
	c.Flags().BoolVar(&f.noBrowser, "no-browser", false, "print the URL without opening a browser")
	c.Flags().BoolVar(&f.allowRemote, "allow-remote", false, "allow --listen on a non-loopback address (plain HTTP: anyone with the URL controls the GUI)")
	c.Flags().StringVar(&f.dataDir, "data-dir", "", "data directory of the host that Host mode runs (env "+host.DataDirEnv+"; default: as 'shmgr host')")
	c.Flags().BoolVar(&f.quiet, "quiet", false, "log only warnings and errors")
	return c
}

func runGUI(ctx context.Context, f *guiFlags, stdout, stderr io.Writer) error {
	logger, err := newLogger(stderr, "text", "info", f.quiet)
	if err != nil {
		return err
	}
	dir := f.dataDir
	if dir == "" {
		if dir, err = host.DefaultDataDir(); err != nil {
			return err
		}
	}
	if err := checkGUIListen(f.listen, f.allowRemote); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", f.listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w (pick another address with --listen)", f.listen, err)
	}
	addr := ln.Addr().(*net.TCPAddr)
	if !addr.IP.IsLoopback() && !f.allowRemote {
		ln.Close()
		return usageError{fmt.Errorf("--listen %s: %s is not a loopback address; pass --allow-remote to serve the network", f.listen, addr.IP)}
	}
	ui, err := webui.New(webui.Config{
		Assets:      dist.FS(),
		DataDir:     dir,
		Version:     version,
		AllowRemote: f.allowRemote,
		Logf:        func(format string, args ...any) { logger.Info(fmt.Sprintf(format, args...)) },
	})
	if err != nil {
		ln.Close()
		return err
	}
	url := ui.URL(addr)
	fmt.Fprintf(stdout, "shmgr gui %s (pid %d)\n", version, os.Getpid())
	fmt.Fprintf(stdout, "url:       %s\n", url)
	fmt.Fprintf(stdout, "data dir:  %s\n", dir)
	if f.allowRemote && !addr.IP.IsLoopback() {
		fmt.Fprintf(stdout, "warning:   --allow-remote: the GUI is served over plain HTTP on %s; anyone with the URL controls it\n", addr)
	}

	errc := make(chan error, 1)
	go func() { errc <- ui.Serve(ln) }()

	var opener *exec.Cmd
	if f.noBrowser {
		fmt.Fprintln(stdout, "open the URL in a browser; stop with Ctrl-C")
	} else if opener, err = webui.OpenBrowser(url); err != nil {
		fmt.Fprintf(stdout, "could not open a browser (%v): open the URL yourself; stop with Ctrl-C\n", err)
	} else {
		fmt.Fprintln(stdout, "opened in your browser; stop with Ctrl-C")
	}
	openerDone := make(chan struct{})
	if opener != nil {
		go func() { opener.Wait(); close(openerDone) }()
	} else {
		close(openerDone)
	}

	select {
	case err = <-errc:
		errc <- err
	case <-ctx.Done():
		logger.Info("shutting down")
	}
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	serr := ui.Shutdown(sctx)
	if err = <-errc; errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	if err == nil && serr != nil {
		err = fmt.Errorf("shutting down: %w", serr)
	}
	// The opener normally exits at once; one that runs the browser in the
	// foreground is left to it.
	select {
	case <-openerDone:
	case <-time.After(time.Second):
	}
	return err
}

// checkGUIListen refuses a non-loopback --listen without --allow-remote
// before anything binds it.
func checkGUIListen(listen string, allowRemote bool) error {
	h, _, err := net.SplitHostPort(listen)
	if err != nil {
		return usageError{fmt.Errorf("--listen %q: %w", listen, err)}
	}
	if allowRemote || h == "localhost" {
		return nil
	}
	ip := net.ParseIP(h)
	if ip == nil || !ip.IsLoopback() {
		return usageError{fmt.Errorf("--listen %s: not a loopback address; the GUI is an admin interface: pass --allow-remote to serve the network", listen)}
	}
	return nil
}
