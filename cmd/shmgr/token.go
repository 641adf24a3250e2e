package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/shmgr/shmgr/internal/auth"
	"github.com/shmgr/shmgr/internal/host"
	"github.com/shmgr/shmgr/internal/proto"
)

func newTokenCmd() *cobra.Command {
	var dataDir string
	var asJSON bool
	dirOf := func() (string, error) {
		if dataDir != "" {
			return dataDir, nil
		}
		return host.DefaultDataDir()
	}
	store := func() (*auth.Store, error) {
		dir, err := dirOf()
		if err != nil {
			return nil, err
		}
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("data directory: %w", err)
		}
		return auth.Open(dir)
	}
	c := &cobra.Command{
		Use:   "token",
		Short: "Manage a host's access tokens (on the host's machine)",
		Long: `Manage the tokens in a host's data directory. A host bound to anything but
loopback requires a token from every client; "admin" is made on first start.
A token may be read-only, and may be limited to some regions. A running host
picks up changes without a restart: within about a second it closes the
connections whose token was removed or changed (a region a client has
already mapped on the host's machine stays mapped).`,
		Example: `  shmgr token ls
  shmgr token add dashboard --read-only
  shmgr token add sensor-7 --regions sensors,alerts
  shmgr token rm dashboard`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, args []string) error { return c.Help() },
	}
	c.PersistentFlags().StringVar(&dataDir, "data-dir", "", "the host's data directory (env "+host.DataDirEnv+")")
	c.PersistentFlags().BoolVar(&asJSON, "json", false, "print JSON")

	ls := &cobra.Command{
		Use:     "ls",
		Short:   "List tokens (names, access and regions; secrets with --show)",
		Example: "  shmgr token ls\n  shmgr token ls --show --json",
		Args:    cobra.NoArgs,
	}
	var show bool
	ls.Flags().BoolVar(&show, "show", false, "print the secrets too")
	ls.RunE = func(c *cobra.Command, args []string) error {
		dir, err := dirOf()
		if err != nil {
			return err
		}
		if _, err := os.Stat(filepath.Join(dir, auth.FileName)); errors.Is(err, os.ErrNotExist) {
			return result{json: []auth.Token{}, text: func(out io.Writer) error {
				fmt.Fprintf(out, "no tokens in %s yet: a host makes its admin token when it first needs one (a --listen beyond loopback, or --token)\n", dir)
				return nil
			}}.print(c.OutOrStdout(), asJSON)
		}
		s, err := store()
		if err != nil {
			return err
		}
		ts, err := s.List()
		if err != nil {
			return err
		}
		if !show {
			for i := range ts {
				ts[i].Secret = ""
			}
		}
		return result{json: ts, text: func(out io.Writer) error {
			tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tACCESS\tREGIONS\tCREATED\tTOKEN")
			for _, t := range ts {
				regions := "all"
				if len(t.Regions) > 0 {
					regions = strings.Join(t.Regions, ",")
				}
				secret := "(--show)"
				if show {
					secret = t.Secret
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", t.Name, t.Access, regions, t.Created.Format("2006-01-02"), secret)
			}
			return tw.Flush()
		}}.print(c.OutOrStdout(), asJSON)
	}

	add := &cobra.Command{
		Use:   "add NAME",
		Short: "Add a token (or replace the one with this name) and print it",
		Example: `  shmgr token add dashboard --read-only
  shmgr token add sensor-7 --regions sensors,alerts`,
		Args: cobra.ExactArgs(1),
	}
	var readOnly bool
	var regions []string
	var secret string
	add.Flags().BoolVar(&readOnly, "read-only", false, "may read, list and watch, but not write, lock, create or delete")
	add.Flags().StringSliceVar(&regions, "regions", nil, "limit the token to these shm_ids (comma-separated; default: all)")
	add.Flags().StringVar(&secret, "secret", "", "use this secret (at least 16 characters) instead of a random one")
	add.RunE = func(c *cobra.Command, args []string) error {
		if c.Flags().Changed("regions") {
			var clean []string
			for _, r := range regions {
				if r = strings.TrimSpace(r); r == "" {
					continue
				}
				if !proto.ValidID([]byte(r)) {
					return usageError{fmt.Errorf("--regions: %q is not a shm_id", r)}
				}
				clean = append(clean, r)
			}
			if len(clean) == 0 {
				return usageError{fmt.Errorf("--regions names no region: leave the flag out for a token that covers every region")}
			}
			regions = clean
		}
		s, err := store()
		if err != nil {
			return err
		}
		access := auth.ReadWrite
		if readOnly {
			access = auth.ReadOnly
		}
		t, err := s.Add(auth.Token{Name: args[0], Secret: secret, Access: access, Regions: regions})
		if err != nil {
			return usageError{err}
		}
		return result{json: t, text: func(out io.Writer) error {
			fmt.Fprintln(out, t.Secret)
			return nil
		}}.print(c.OutOrStdout(), asJSON)
	}

	rm := &cobra.Command{
		Use:     "rm NAME",
		Short:   "Remove a token (the host closes the connections that used it)",
		Example: "  shmgr token rm dashboard",
		Args:    cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			s, err := store()
			if err != nil {
				return err
			}
			return s.Remove(args[0])
		},
	}
	c.AddCommand(ls, add, rm)
	return c
}
