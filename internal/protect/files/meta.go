package files

import (
	"errors"
	"os"
	"os/user"
	"slices"
	"strconv"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/rewind-dr/rewind/internal/vault"
)

// modeBits converts st_mode to the Node.Mode encoding (os.FileMode permission and special
// bits).
func modeBits(m uint32) uint32 {
	out := os.FileMode(m & 0o777)
	if m&unix.S_ISUID != 0 {
		out |= os.ModeSetuid
	}
	if m&unix.S_ISGID != 0 {
		out |= os.ModeSetgid
	}
	if m&unix.S_ISVTX != 0 {
		out |= os.ModeSticky
	}
	return uint32(out)
}

// unixMode converts Node.Mode back to st_mode permission and special bits.
func unixMode(m uint32) uint32 {
	fm := os.FileMode(m)
	out := uint32(fm.Perm())
	if fm&os.ModeSetuid != 0 {
		out |= unix.S_ISUID
	}
	if fm&os.ModeSetgid != 0 {
		out |= unix.S_ISGID
	}
	if fm&os.ModeSticky != 0 {
		out |= unix.S_ISVTX
	}
	return out
}

func timespec(ts unix.Timespec) time.Time { return time.Unix(ts.Sec, ts.Nsec).UTC() }

// nodeType maps the file type bits of st_mode to a NodeType ("" for unknown types).
func nodeType(m uint32) vault.NodeType {
	switch m & unix.S_IFMT {
	case unix.S_IFREG:
		return vault.NodeFile
	case unix.S_IFDIR:
		return vault.NodeDir
	case unix.S_IFLNK:
		return vault.NodeSymlink
	case unix.S_IFIFO:
		return vault.NodeFIFO
	case unix.S_IFBLK:
		return vault.NodeDev
	case unix.S_IFCHR:
		return vault.NodeChar
	case unix.S_IFSOCK:
		return vault.NodeSocket
	}
	return ""
}

// statNode fills a node from a stat result; the caller adds content, link target and xattrs.
func statNode(name string, st *unix.Stat_t, ids *idNames) *vault.Node {
	n := &vault.Node{
		Name:       []byte(name),
		Type:       nodeType(st.Mode),
		Mode:       modeBits(st.Mode),
		UID:        st.Uid,
		GID:        st.Gid,
		User:       ids.user(st.Uid),
		Group:      ids.group(st.Gid),
		ModTime:    timespec(st.Mtim),
		AccessTime: timespec(st.Atim),
		ChangeTime: timespec(st.Ctim),
		Inode:      st.Ino,
		DeviceID:   st.Dev,
		Links:      uint64(st.Nlink),
	}
	switch n.Type {
	case vault.NodeFile:
		n.Size = uint64(st.Size)
	case vault.NodeDev, vault.NodeChar:
		n.Rdev = st.Rdev
	}
	return n
}

// idNames caches user and group names by ID.
type idNames struct {
	mu     sync.Mutex
	users  map[uint32]string
	groups map[uint32]string
}

func (c *idNames) user(uid uint32) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if name, ok := c.users[uid]; ok {
		return name
	}
	if c.users == nil {
		c.users = map[uint32]string{}
	}
	name := ""
	if u, err := user.LookupId(strconv.FormatUint(uint64(uid), 10)); err == nil {
		name = u.Username
	}
	c.users[uid] = name
	return name
}

func (c *idNames) group(gid uint32) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if name, ok := c.groups[gid]; ok {
		return name
	}
	if c.groups == nil {
		c.groups = map[uint32]string{}
	}
	name := ""
	if g, err := user.LookupGroupId(strconv.FormatUint(uint64(gid), 10)); err == nil {
		name = g.Name
	}
	c.groups[gid] = name
	return name
}

// readLink returns the target of symlink p as raw bytes.
func readLink(p string) ([]byte, error) {
	for size := 256; ; size *= 2 {
		buf := make([]byte, size)
		n, err := unix.Readlink(p, buf)
		if err != nil {
			return nil, &os.PathError{Op: "readlink", Path: p, Err: err}
		}
		if n < size {
			return buf[:n], nil
		}
	}
}

// xattrUnsupported reports errors meaning "this file system or file has no xattrs".
func xattrUnsupported(err error) bool {
	return errors.Is(err, unix.ENOTSUP) || errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.ENODATA)
}

// readXattrs returns the extended attributes of p (not following a symlink), sorted by name.
func readXattrs(p string) ([]vault.Xattr, error) {
	var names []byte
	for {
		n, err := unix.Llistxattr(p, nil)
		if err != nil {
			if xattrUnsupported(err) {
				return nil, nil
			}
			return nil, &os.PathError{Op: "listxattr", Path: p, Err: err}
		}
		if n == 0 {
			return nil, nil
		}
		names = make([]byte, n)
		n, err = unix.Llistxattr(p, names)
		if errors.Is(err, unix.ERANGE) {
			continue // grew in between
		}
		if err != nil {
			return nil, &os.PathError{Op: "listxattr", Path: p, Err: err}
		}
		names = names[:n]
		break
	}
	var out []vault.Xattr
	for len(names) > 0 {
		i := 0
		for i < len(names) && names[i] != 0 {
			i++
		}
		name := string(names[:i])
		if i < len(names) {
			i++
		}
		names = names[i:]
		if name == "" {
			continue
		}
		val, err := getXattr(p, name)
		if err != nil {
			if errors.Is(err, unix.ENODATA) {
				continue // removed in between
			}
			return out, &os.PathError{Op: "getxattr " + name, Path: p, Err: err}
		}
		out = append(out, vault.Xattr{Name: []byte(name), Value: val})
	}
	slices.SortFunc(out, func(a, b vault.Xattr) int { return slices.Compare(a.Name, b.Name) })
	return out, nil
}

func getXattr(p, name string) ([]byte, error) {
	for {
		n, err := unix.Lgetxattr(p, name, nil)
		if err != nil {
			return nil, err
		}
		buf := make([]byte, n)
		n, err = unix.Lgetxattr(p, name, buf)
		if errors.Is(err, unix.ERANGE) {
			continue
		}
		if err != nil {
			return nil, err
		}
		return buf[:n], nil
	}
}
