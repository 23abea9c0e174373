package vault

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/rewind-dr/rewind/internal/vault/chunker"
)

func FuzzDecodeKeyFile(f *testing.F) {
	m := &masterKey{Enc: [32]byte{1}, MAC: [32]byte{2}, Chunker: [32]byte{3}}
	p := KDFParams{Time: 1, Memory: 64, Threads: 1}
	name, good, err := newKeyFile(m, "pw", p, "h", "u", time.Unix(0, 0))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add([]byte(`{"version":1,"kdf":{"name":"argon2id","time":1,"memory":4294967295,"threads":1}}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		kf, err := decodeKeyFile(name, b)
		if err != nil {
			return
		}
		// Whatever decodes has bounded KDF cost; keep the fuzzer fast by opening only cheap ones.
		if kf.KDF.Memory > maxKDFMemory || kf.KDF.Time > maxKDFTime {
			t.Fatalf("unbounded KDF accepted: %+v", kf.KDF)
		}
		if kf.KDF.Memory <= 1024 && kf.KDF.Time <= 2 {
			got, err := openKeyFile(name, kf, "pw")
			if err == nil && *got != *m {
				t.Fatal("opened to different key material")
			}
		}
	})
}

func FuzzDecodeConfig(f *testing.F) {
	c := config{Version: 1, ID: randomID().String(), Created: time.Unix(0, 0),
		Chunker:  chunkerJSON{Min: chunker.DefaultParams.Min, Avg: chunker.DefaultParams.Avg, Max: chunker.DefaultParams.Max},
		PackSize: DefaultPackSize, Compression: "zstd"}
	b, _ := json.Marshal(c)
	f.Add(b)
	f.Add([]byte(`{"version":2}`))
	f.Add([]byte(`{"version":1,"id":"zz","pack_size":-1}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		cfg, _, err := decodeConfig(b)
		if err != nil {
			return
		}
		if cfg.PackSize < minPackSize || cfg.PackSize > maxPackSize || cfg.chunkerParams().Validate() != nil {
			t.Fatalf("invalid config accepted: %+v", cfg)
		}
	})
}

func FuzzDecodeLock(f *testing.F) {
	r := &Repository{}
	b, _ := json.Marshal(lockFile{Version: 1, Host: "h", PID: 1, TTL: time.Minute})
	f.Add(b)
	f.Add([]byte(`{"version":3}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		lf, err := r.decodeLock("x", b)
		if err == nil && lf.Version != 1 {
			t.Fatal("unknown lock version accepted")
		}
	})
}
