package vault

import (
	"encoding/json"
	"time"
)

// NodeType is the kind of a tree entry.
type NodeType string

const (
	NodeFile    NodeType = "file"
	NodeDir     NodeType = "dir"
	NodeSymlink NodeType = "symlink"
	NodeFIFO    NodeType = "fifo"
	NodeDev     NodeType = "dev"  // block device
	NodeChar    NodeType = "char" // character device
	NodeSocket  NodeType = "socket"
)

// Xattr is one extended attribute; names and values are raw bytes.
type Xattr struct {
	Name  []byte `json:"name"`
	Value []byte `json:"value"`
}

// Node is one entry of a Tree. Names, link targets and xattrs are raw bytes (JSON base64), so
// names that are not valid UTF-8 round-trip byte-exactly.
//
// The vault reads only Type, Content and Subtree (to find which blobs a point references);
// everything else belongs to the resource plugin that wrote the tree.
type Node struct {
	Name       []byte    `json:"name"`
	Type       NodeType  `json:"type"`
	Mode       uint32    `json:"mode"` // permission and special bits (os.FileMode bits of perm|setuid|setgid|sticky)
	UID        uint32    `json:"uid"`
	GID        uint32    `json:"gid"`
	User       string    `json:"user,omitempty"`
	Group      string    `json:"group,omitempty"`
	ModTime    time.Time `json:"mtime"`
	AccessTime time.Time `json:"atime,omitzero"`
	ChangeTime time.Time `json:"ctime,omitzero"`
	Inode      uint64    `json:"inode,omitempty"`
	DeviceID   uint64    `json:"device_id,omitempty"` // st_dev of the source file system (for hard links)
	Links      uint64    `json:"links,omitempty"`
	Size       uint64    `json:"size,omitempty"`
	Content    []ID      `json:"content,omitempty"` // data blobs, in order (files)
	Subtree    *ID       `json:"subtree,omitempty"` // tree blob (directories)
	LinkTarget []byte    `json:"link_target,omitempty"`
	Rdev       uint64    `json:"rdev,omitempty"` // device number (dev, char)
	Xattrs     []Xattr   `json:"xattrs,omitempty"`
	// Sparse marks a file whose all-zero chunks are holes; Content still lists every chunk.
	Sparse bool `json:"sparse,omitempty"`
}

// Tree is a directory listing: its nodes sorted by Name (bytewise).
type Tree struct {
	Nodes []*Node `json:"nodes"`
}

// EncodeTree returns the canonical encoding of t (the plaintext of a tree blob).
func EncodeTree(t *Tree) ([]byte, error) { return json.Marshal(t) }

// DecodeTree decodes a tree blob's plaintext.
func DecodeTree(b []byte) (*Tree, error) {
	var t Tree
	if err := json.Unmarshal(b, &t); err != nil {
		return nil, err
	}
	return &t, nil
}
