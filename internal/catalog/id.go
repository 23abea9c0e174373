package catalog

import (
	"crypto/rand"
	"encoding/binary"
	"sync"
	"time"
)

// crockford is the ULID alphabet: Crockford's base 32, which sorts like the numbers it encodes.
const crockford = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

var idState struct {
	sync.Mutex
	ms     uint64
	hi, lo uint64 // the last ID's 128 bits
}

// NewID returns a ULID for time t: 26 characters, 48 bits of milliseconds then 80 random
// bits. IDs made by one process sort in the order they were made, even within one
// millisecond or if t goes backwards (the last ID's random part is then incremented). IDs
// from several processes sort by their millisecond. Safe for concurrent use.
func NewID(t time.Time) string {
	ms := uint64(t.UnixMilli()) & (1<<48 - 1)
	idState.Lock()
	defer idState.Unlock()
	var hi, lo uint64
	if idState.ms != 0 && ms <= idState.ms {
		hi, lo = idState.hi, idState.lo+1
		if lo == 0 {
			hi++ // carries into the milliseconds only after 2^80 IDs in one millisecond
		}
	} else {
		var r [10]byte
		if _, err := rand.Read(r[:]); err != nil {
			panic("catalog: crypto/rand failed: " + err.Error())
		}
		hi = ms<<16 | uint64(binary.BigEndian.Uint16(r[:2]))
		lo = binary.BigEndian.Uint64(r[2:])
		idState.ms = ms
	}
	idState.hi, idState.lo = hi, lo
	var out [26]byte
	for i := 25; i >= 0; i-- {
		out[i] = crockford[lo&31]
		lo = lo>>5 | hi<<59
		hi >>= 5
	}
	return string(out[:])
}
