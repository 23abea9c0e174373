// Command benchdata generates and mutates the data sets of Rewind's comparison benchmark
// (bench/compare.sh), deterministically from a seed: "gen" writes the mixed data set (half
// seeded random bytes, half generated text that compresses but not to nothing) and "mutate"
// inserts a few random bytes at random offsets into about a given fraction of the files and
// of the 1 MiB segments of large files. It is a benchmark tool only: it must not import
// Rewind's packages, so it measures nothing but builds the same input for every tool.
package main
