// Package seal implements the vault's sealed envelope: the one authenticated-encryption
// format used for every encrypted file and blob. Each object gets its own key, derived from
// the vault's encryption key and a random salt, and is encrypted with AES-256-GCM under a
// random nonce; the associated data binds the object's vault, type and name so that no
// object can be swapped for another. Package seal knows nothing of packs, indexes or
// backends and must never return plaintext that failed authentication.
package seal
