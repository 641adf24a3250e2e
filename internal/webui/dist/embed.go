// Package dist holds the web GUI's files, embedded in the binary: plain
// HTML, CSS and JavaScript with no build step, so the GUI works offline.
// index.html is an html/template (see webui.Config.Assets).
package dist

import (
	"embed"
	"io/fs"
)

//go:embed index.html style.css theme.js i18n.js app.js favicon.svg
var files embed.FS

// FS returns the GUI's files.
func FS() fs.FS { return files }
