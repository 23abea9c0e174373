package main

import (
	"bufio"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
)

// segment is the unit of change in large files: each 1 MiB segment receives an insertion
// with probability fraction, so about fraction of a large file's bytes are near a change.
const segment = 1 << 20

// Mutate walks root in lexical order and inserts 1 to 16 random bytes at a random offset
// into about fraction of the regular files smaller than one segment, and into about
// fraction of the segments of larger files. Choices depend only on seed and each file's path
// relative to root, so the same tree mutates the same way every time. Mode is kept; the
// modification time becomes now, as for a real edit.
func Mutate(root string, seed uint64, fraction float64) (Summary, error) {
	var sum Summary
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		rel, err := filepath.Rel(root, path)
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		s, err := mutateFile(path, info, seeded(seed, "mutate:"+rel), fraction)
		if err != nil {
			return fmt.Errorf("mutate %s: %w", path, err)
		}
		sum.Add(s)
		return nil
	})
	return sum, err
}

// insertion is one change: add bytes before offset at.
type insertion struct {
	at    int64
	bytes []byte
}

func plan(r *rand.Rand, size int64, fraction float64) []insertion {
	var ins []insertion
	segments := max(1, (size+segment-1)/segment)
	for s := range segments {
		start := s * segment
		n := min(segment, size-start)
		if r.Float64() < fraction {
			b := make([]byte, 1+r.IntN(16))
			for i := range b {
				b[i] = byte(r.Uint32())
			}
			ins = append(ins, insertion{at: start + r.Int64N(n+1), bytes: b})
		}
	}
	return ins
}

func mutateFile(path string, info fs.FileInfo, r *rand.Rand, fraction float64) (Summary, error) {
	sum := Summary{Files: 1}
	ins := plan(r, info.Size(), fraction)
	if len(ins) == 0 {
		sum.Bytes = info.Size()
		return sum, nil
	}
	in, err := os.Open(path)
	if err != nil {
		return sum, err
	}
	defer in.Close()
	tmp, err := os.CreateTemp(filepath.Dir(path), ".mutate-*")
	if err != nil {
		return sum, err
	}
	defer os.Remove(tmp.Name()) // no-op after the rename
	w := bufio.NewWriterSize(tmp, 1<<20)
	var pos int64
	for _, x := range ins {
		if _, err := io.CopyN(w, in, x.at-pos); err != nil {
			tmp.Close()
			return sum, err
		}
		pos = x.at
		if _, err := w.Write(x.bytes); err != nil {
			tmp.Close()
			return sum, err
		}
		sum.Inserts++
		sum.BytesAdded += int64(len(x.bytes))
		sum.BytesTouched += min(segment, info.Size()-x.at/segment*segment)
	}
	if _, err := io.Copy(w, in); err != nil {
		tmp.Close()
		return sum, err
	}
	if err := w.Flush(); err != nil {
		tmp.Close()
		return sum, err
	}
	if err := tmp.Chmod(info.Mode().Perm()); err != nil {
		tmp.Close()
		return sum, err
	}
	if err := tmp.Close(); err != nil {
		return sum, err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return sum, err
	}
	sum.Changed = 1
	sum.Bytes = info.Size() + sum.BytesAdded
	return sum, nil
}
