package auth

import (
	"container/list"
	"crypto/sha256"
	"sync"
	"time"
)

// digest identifies a header by its SHA-256 so raw headers are not kept.
type digest [sha256.Size]byte

// headerDigest returns the cache and flight key of a header.
func headerDigest(header string) digest { return sha256.Sum256([]byte(header)) }

// cache remembers verified headers: at most size entries, least recently
// used evicted first, each valid for ttl after it was stored. A nil *cache is
// a disabled cache. It is safe for concurrent use.
type cache struct {
	size int
	ttl  time.Duration

	mu      sync.Mutex
	order   *list.List // of *cacheEntry, most recently used at the front
	entries map[digest]*list.Element
}

type cacheEntry struct {
	key     digest
	expires time.Time
}

// newCache returns a cache, or nil (disabled) when size or ttl is not
// positive.
func newCache(size int, ttl time.Duration) *cache {
	if size <= 0 || ttl <= 0 {
		return nil
	}
	return &cache{size: size, ttl: ttl, order: list.New(), entries: make(map[digest]*list.Element)}
}

// contains reports whether key was stored and has not expired at now,
// marking it recently used. Expired entries are dropped.
func (c *cache) contains(key digest, now time.Time) bool {
	if c == nil {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.entries[key]
	if !ok {
		return false
	}
	if !now.Before(el.Value.(*cacheEntry).expires) {
		c.order.Remove(el)
		delete(c.entries, key)
		return false
	}
	c.order.MoveToFront(el)
	return true
}

// add stores key as verified at now, evicting the least recently used entry
// when full.
func (c *cache) add(key digest, now time.Time) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	expires := now.Add(c.ttl)
	if el, ok := c.entries[key]; ok {
		el.Value.(*cacheEntry).expires = expires
		c.order.MoveToFront(el)
		return
	}
	c.entries[key] = c.order.PushFront(&cacheEntry{key: key, expires: expires})
	for c.order.Len() > c.size {
		oldest := c.order.Back()
		c.order.Remove(oldest)
		delete(c.entries, oldest.Value.(*cacheEntry).key)
	}
}

// len returns the number of entries, expired ones included.
func (c *cache) len() int {
	if c == nil {
		return 0
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.order.Len()
}
