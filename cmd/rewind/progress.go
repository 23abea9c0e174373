package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"golang.org/x/term"

	"github.com/rewind-dr/rewind/internal/protect/files"
)

// progressPrinter renders files.Status snapshots: a one-line bar on a terminal (files,
// bytes, rate, ETA), JSON lines with --json, and nothing otherwise. It throttles output to
// a few updates a second.
type progressPrinter struct {
	mu      sync.Mutex
	w       io.Writer
	mode    int // 0 none, 1 bar, 2 json
	verb    string
	start   time.Time
	last    time.Time
	status  files.Status
	printed bool
}

const (
	progressNone = iota
	progressBar
	progressJSON
)

func newProgress(verb string, jsonOut bool) *progressPrinter {
	p := &progressPrinter{verb: verb, start: time.Now()}
	switch {
	case jsonOut:
		p.mode, p.w = progressJSON, os.Stdout
	case term.IsTerminal(int(os.Stderr.Fd())):
		p.mode, p.w = progressBar, os.Stderr
	}
	return p
}

// update is a files.Progress.
func (p *progressPrinter) update(s files.Status) {
	if p.mode == progressNone {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.status = s
	now := time.Now()
	interval := 250 * time.Millisecond
	if p.mode == progressJSON {
		interval = time.Second
	}
	if now.Sub(p.last) < interval {
		return
	}
	p.last = now
	p.render(now)
}

func (p *progressPrinter) render(now time.Time) {
	s := p.status
	elapsed := now.Sub(p.start).Seconds()
	rate := 0.0
	if elapsed > 0 {
		rate = float64(s.Bytes) / elapsed
	}
	eta := -1.0
	if rate > 0 && s.BytesTotal > s.Bytes {
		eta = float64(s.BytesTotal-s.Bytes) / rate
	}
	switch p.mode {
	case progressJSON:
		line := map[string]any{
			"message_type": "status", "action": p.verb, "seconds_elapsed": int(elapsed),
			"files": s.Files, "dirs": s.Dirs, "bytes": s.Bytes, "bytes_total": s.BytesTotal,
			"bytes_per_second": int64(rate), "errors": s.Errors, "current": s.Current,
		}
		if eta >= 0 {
			line["seconds_remaining"] = int(eta)
		}
		b, _ := json.Marshal(line)
		fmt.Fprintf(p.w, "%s\n", b)
	case progressBar:
		pct := ""
		if s.BytesTotal > 0 {
			pct = fmt.Sprintf("%3.0f%% ", 100*float64(min(s.Bytes, s.BytesTotal))/float64(s.BytesTotal))
		}
		etaText := ""
		if eta >= 0 {
			etaText = " ETA " + (time.Duration(eta) * time.Second).String()
		}
		fmt.Fprintf(p.w, "\r\033[K%s%s %d files, %s / %s, %s/s%s", pct, p.verb, s.Files,
			humanBytes(s.Bytes), humanBytes(s.BytesTotal), humanBytes(uint64(rate)), etaText)
		p.printed = true
	}
}

// done ends the bar's line so the summary starts on a fresh one.
func (p *progressPrinter) done() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.mode == progressBar && p.printed {
		fmt.Fprint(p.w, "\r\033[K")
	}
}
