package backendtest_test

import (
	"testing"

	"github.com/rewind-dr/rewind/internal/vault/backend"
	"github.com/rewind-dr/rewind/internal/vault/backend/backendtest"
	"github.com/rewind-dr/rewind/internal/vault/backend/mem"
)

func TestMem(t *testing.T) {
	backendtest.Run(t, func(t *testing.T) backend.Backend { return mem.New() })
}
