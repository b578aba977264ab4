package binary

import (
	"container/list"
	"sync"
)

// DefaultCacheBytes bounds a Cache made with a non-positive size: enough for
// the symbol names of a few dozen large binaries.
const DefaultCacheBytes = 64 << 20

// Cache remembers the Symbols of recently read binaries by cacheKey (the
// Identity and the change time), least recently used first out, holding at
// most about maxBytes of names. A file changed in place gets a new ctime
// (which, unlike the mtime, its owner cannot set back), a file replaced a
// new inode: both miss. It is safe for concurrent use.
type Cache struct {
	mu       sync.Mutex
	maxBytes int64
	bytes    int64
	order    *list.List // of *cacheEntry, most recent first
	entries  map[cacheKey]*list.Element
	hits     int64
	misses   int64
}

// cacheKey names one content of a file: its identity and change time.
type cacheKey struct {
	Identity
	CtimeNs int64
}

type cacheEntry struct {
	id   cacheKey
	syms *Symbols
	size int64
}

// NewCache returns a cache holding at most about maxBytes of symbol names
// (DefaultCacheBytes when maxBytes <= 0).
func NewCache(maxBytes int64) *Cache {
	if maxBytes <= 0 {
		maxBytes = DefaultCacheBytes
	}
	return &Cache{maxBytes: maxBytes, order: list.New(), entries: make(map[cacheKey]*list.Element)}
}

// get returns the cached symbols of id.
func (c *Cache) get(id cacheKey) (*Symbols, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[id]
	if !ok {
		c.misses++
		return nil, false
	}
	c.hits++
	c.order.MoveToFront(e)
	return e.Value.(*cacheEntry).syms, true
}

// put remembers s as the symbols of id; an entry larger than the whole
// cache is not kept.
func (c *Cache) put(id cacheKey, s *Symbols) {
	size := s.size()
	c.mu.Lock()
	defer c.mu.Unlock()
	if size > c.maxBytes {
		return
	}
	if e, ok := c.entries[id]; ok {
		c.order.MoveToFront(e)
		return
	}
	c.entries[id] = c.order.PushFront(&cacheEntry{id: id, syms: s, size: size})
	c.bytes += size
	for c.bytes > c.maxBytes {
		last := c.order.Back()
		old := last.Value.(*cacheEntry)
		c.order.Remove(last)
		delete(c.entries, old.id)
		c.bytes -= old.size
	}
}

// Stats returns the cache's hit and miss counts and the bytes it holds.
func (c *Cache) Stats() (hits, misses, bytes int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.hits, c.misses, c.bytes
}
