package vault

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"

	"github.com/rewind-dr/rewind/internal/vault/chunker"
	"github.com/rewind-dr/rewind/internal/vault/pack"
	"github.com/rewind-dr/rewind/internal/vault/seal"
)

const (
	// FormatVersion is the vault format this build writes and the highest it reads.
	FormatVersion = 1
	// DefaultPackSize is the target size of a pack file, in bytes.
	DefaultPackSize = 16 << 20
	minPackSize     = 64 << 10
	maxPackSize     = 1 << 30
	maxConfigSize   = 64 << 10
)

type chunkerJSON struct {
	Min int `json:"min"`
	Avg int `json:"avg"`
	Max int `json:"max"`
}

// config is the plaintext of the config file.
type config struct {
	Version     int         `json:"version"`
	ID          string      `json:"id"`
	Created     time.Time   `json:"created"`
	Chunker     chunkerJSON `json:"chunker"`
	PackSize    int         `json:"pack_size"`
	Compression string      `json:"compression"`
}

func (c *config) chunkerParams() chunker.Params {
	return chunker.Params{Min: c.Chunker.Min, Avg: c.Chunker.Avg, Max: c.Chunker.Max}
}

func configContext() seal.Context {
	return seal.Context{Type: seal.Config, Name: []byte("config")}
}

func decodeConfig(b []byte) (*config, [32]byte, error) {
	var vid [32]byte
	if len(b) > maxConfigSize {
		return nil, vid, fmt.Errorf("config of %d bytes exceeds the %d-byte cap", len(b), maxConfigSize)
	}
	var c config
	if err := json.Unmarshal(b, &c); err != nil {
		return nil, vid, fmt.Errorf("config: %v", err)
	}
	if c.Version < 1 || c.Version > FormatVersion {
		return nil, vid, fmt.Errorf("config: vault format version %d is not supported (this build reads 1..%d)", c.Version, FormatVersion)
	}
	id, err := hex.DecodeString(c.ID)
	if err != nil || len(id) != 32 {
		return nil, vid, fmt.Errorf("config: vault ID %q is not 64 hex characters", c.ID)
	}
	copy(vid[:], id)
	if err := c.chunkerParams().Validate(); err != nil {
		return nil, vid, fmt.Errorf("config: chunker parameters: %v", err)
	}
	if c.chunkerParams().Max > pack.MaxBlobSize {
		return nil, vid, fmt.Errorf("config: chunker maximum %d exceeds the blob cap %d", c.Chunker.Max, pack.MaxBlobSize)
	}
	if c.PackSize < minPackSize || c.PackSize > maxPackSize {
		return nil, vid, fmt.Errorf("config: pack size %d outside %d..%d", c.PackSize, minPackSize, maxPackSize)
	}
	if c.Compression != "zstd" {
		return nil, vid, fmt.Errorf("config: unknown compression %q", c.Compression)
	}
	return &c, vid, nil
}
