package postgres

// Exported for the black-box tests' fuzzers.

type SegmentHeaderForTest = segmentHeader

func ParseSegmentHeaderForTest(b []byte) (segmentHeader, error) { return parseSegmentHeader(b) }

type HistEntryForTest struct {
	TLI    uint32
	Switch LSN
}

func ParseHistoryForTest(b []byte) ([]HistEntryForTest, error) {
	es, err := parseHistory(b)
	var out []HistEntryForTest
	for _, e := range es {
		out = append(out, HistEntryForTest{e.tli, e.switchLSN})
	}
	return out, err
}
