// Package location turns a vault location string (a path, file:///path, s3://host/bucket/
// prefix or s3+http://host/bucket/prefix) into an opened backend. Credentials are passed in
// by the caller: this package must not read the environment or any configuration file.
package location
