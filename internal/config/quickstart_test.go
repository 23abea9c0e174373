package config_test

import (
	"testing"

	"github.com/rewind-dr/rewind/internal/config"
)

// The quickstart config shipped in examples/ must always parse.
func TestQuickstartExampleParses(t *testing.T) {
	cfg, err := config.Load("../../examples/quickstart/rewind.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Plans["gold"].Resources) != 2 || len(cfg.Warnings) != 0 {
		t.Errorf("gold selects %v; warnings %v", cfg.Plans["gold"].Resources, cfg.Warnings)
	}
}
