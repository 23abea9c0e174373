// Package chunker splits a byte stream into content-defined chunks with FastCDC (Xia et al.,
// "FastCDC: a Fast and Efficient Content-Defined Chunking Approach", 2016): a gear rolling
// hash, cut-point skipping below the minimum size and normalized chunking (a stricter mask
// before the normal point, a looser one after it), scanning two bytes per step as in the
// 2020 revision of the paper. Unlike published FastCDC implementations, the 256 gear values
// are derived from a per-vault secret with BLAKE3 in key-derivation mode, so chunk
// boundaries (and thus chunk lengths) reveal nothing about the content to someone without
// the key; no Go library offers a keyed gear table, which is why this package exists. The
// chunker only finds boundaries and hands out bytes: it must not hash, compress, encrypt,
// deduplicate or store chunks, and it never retains the caller's buffers.
package chunker
