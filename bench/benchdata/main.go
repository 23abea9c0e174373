package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
)

const usage = `usage:
  benchdata gen -out DIR [-seed N] [-size-mb N] [-file-mb N]
      write DIR/random-NN.bin and DIR/text-NN.txt, half of the size each
  benchdata mutate [-seed N] [-fraction F] PATH...
      insert 1-16 random bytes at a random offset into about F of the files under PATH and
      of the 1 MiB segments of files larger than 1 MiB; print a summary

examples:
  benchdata gen -out /tmp/data/mixed -seed 1 -size-mb 2048
  benchdata mutate -seed 2 -fraction 0.05 /tmp/data/mixed /tmp/data/tree
`

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "benchdata:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	if len(args) == 0 {
		fmt.Fprint(os.Stderr, usage)
		return errors.New("missing command: gen or mutate")
	}
	switch args[0] {
	case "gen":
		fs := flag.NewFlagSet("gen", flag.ContinueOnError)
		out := fs.String("out", "", "directory to write the data set into (created)")
		seed := fs.Uint64("seed", 1, "seed of the generators")
		sizeMB := fs.Int("size-mb", 2048, "total size in MiB, half random and half text")
		fileMB := fs.Int("file-mb", 256, "largest file size in MiB")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		if *out == "" || *sizeMB < 2 || *fileMB < 1 {
			return errors.New("gen needs -out DIR, -size-mb >= 2 and -file-mb >= 1")
		}
		sum, err := Generate(*out, *seed, int64(*sizeMB)<<20, int64(*fileMB)<<20)
		if err != nil {
			return err
		}
		fmt.Printf("files=%d bytes=%d\n", sum.Files, sum.Bytes)
		return nil
	case "mutate":
		fs := flag.NewFlagSet("mutate", flag.ContinueOnError)
		seed := fs.Uint64("seed", 2, "seed of the mutation")
		fraction := fs.Float64("fraction", 0.05, "share of files and of 1 MiB segments to change")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		if fs.NArg() == 0 || *fraction <= 0 || *fraction > 1 {
			return errors.New("mutate needs at least one PATH and 0 < -fraction <= 1")
		}
		var total Summary
		for _, p := range fs.Args() {
			s, err := Mutate(p, *seed, *fraction)
			if err != nil {
				return err
			}
			total.Add(s)
		}
		fmt.Println(total)
		return nil
	case "-h", "-help", "--help", "help":
		fmt.Print(usage)
		return nil
	}
	fmt.Fprint(os.Stderr, usage)
	return fmt.Errorf("unknown command %q: want gen or mutate", args[0])
}
