// Package s3 stores a vault in an S3-compatible object store (AWS S3, MinIO, versitygw,
// Ceph RGW, ...), one object per backend handle under a key prefix, in the layout of
// backend.RelPath. Uploads carry a Content-MD5 checksum so that the server rejects damaged
// or incomplete bodies. It only moves bytes: it must not interpret contents, retry (the
// client is set to a single attempt; see the retry decorator), or put credentials in
// locations or errors.
package s3
