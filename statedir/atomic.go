package statedir

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// WriteFile writes data to path atomically, for every state file hc-agent
// keeps: a temporary file in the same directory (a unique name, so that
// two writers never share one), mode 0600, fsync, rename over path, and an
// fsync of the directory so that the rename survives a crash. A reader
// sees the old content or the new one, never a part. The directory is
// created with mode 0700 when it is missing. On failure the temporary file
// is removed and path is unchanged.
func WriteFile(path string, data []byte) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("write %s: create directory: %w", path, err)
	}
	// CreateTemp opens with mode 0600.
	f, err := os.CreateTemp(dir, filepath.Base(path)+".*.tmp")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmp := f.Name()
	_, werr := f.Write(data)
	serr := f.Sync()
	cerr := f.Close()
	if err := errors.Join(werr, serr, cerr); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", path, err)
	}
	if d, err := os.Open(dir); err == nil {
		// Best effort: some file systems refuse to sync a directory.
		_ = d.Sync()
		d.Close()
	}
	return nil
}
