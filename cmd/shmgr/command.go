package main

// This file holds the shape the client commands share: apply --timeout,
// reach the host, run one operation, print its result as JSON (--json) or
// as text, and close. A command supplies only the operation and its two
// ways of printing.

import (
	"context"
	"io"

	"github.com/spf13/cobra"
)

// result is what a command prints when it succeeds.
type result struct {
	// json is printed, as one JSON value, under --json.
	json any
	// text prints the result for people otherwise; nil prints nothing.
	text func(w io.Writer) error
}

// print writes r to w: r.json when asJSON, else r.text.
func (r result) print(w io.Writer, asJSON bool) error {
	if asJSON {
		return printJSON(w, r.json)
	}
	if r.text == nil {
		return nil
	}
	return r.text(w)
}

// withClient runs op for command c: under --timeout, on the client that
// open returns ((*globals).connect for a host-wide operation,
// (*globals).dial for one region), printing the result to c's standard
// output before the client is closed. An error from open (which carries
// its hint) or from op is returned as it is, and nothing is printed.
func withClient[T io.Closer](c *cobra.Command, g *globals, open func(*globals, context.Context) (T, error), op func(context.Context, T) (result, error)) error {
	ctx, cancel := g.withTimeout(c.Context())
	defer cancel()
	cl, err := open(g, ctx)
	if err != nil {
		return err
	}
	defer cl.Close()
	res, err := op(ctx, cl)
	if err != nil {
		return err
	}
	return res.print(c.OutOrStdout(), g.json)
}
