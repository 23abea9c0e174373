package files

import (
	"io"

	"github.com/rewind-dr/rewind/internal/vault"
	"github.com/rewind-dr/rewind/internal/vault/chunker"
)

// FromVault adapts an open vault to Store: everything but NewChunker is the vault's own
// method; the chunker is the vault's keyed one.
func FromVault(r *vault.Repository) Store { return vaultStore{r} }

type vaultStore struct{ *vault.Repository }

func (s vaultStore) NewChunker(rd io.Reader) Chunker {
	return vaultChunker{s.Repository.NewChunker(rd)}
}

type vaultChunker struct{ c *chunker.Chunker }

func (c vaultChunker) Next(buf []byte) ([]byte, error) {
	ch, err := c.c.Next(buf)
	if err != nil {
		return nil, err
	}
	return ch.Data, nil
}
