package config

import (
	"net/url"
	"slices"
	"strings"
)

// redactedValue replaces secrets in Redacted.
const redactedValue = "***"

// Redacted returns a copy of c that is safe to log: a non-empty secret or
// root-password becomes "***" (an empty one stays empty, so the log shows
// it is unset), and the password of a database URL becomes "xxxxx"
// (url.URL.Redacted). The copy shares no slices with c.
func (c Config) Redacted() Config {
	if c.Lambda.Secret != "" {
		c.Lambda.Secret = redactedValue
	}
	if c.Lambda.RootPassword != "" {
		c.Lambda.RootPassword = redactedValue
	}
	c.Database.URL = redactURL(c.Database.URL)
	c.Lambda.BPFEnvAllow = slices.Clone(c.Lambda.BPFEnvAllow)
	c.Lambda.StapEnvAllow = slices.Clone(c.Lambda.StapEnvAllow)
	return c
}

// redactURL hides the password of a URL with user info as "xxxxx". A URL
// that does not parse is replaced by "***" when it might hold a password
// ('@').
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		if strings.Contains(raw, "@") {
			return redactedValue
		}
		return raw
	}
	if _, has := u.User.Password(); !has {
		return raw // also covers u.User == nil
	}
	return u.Redacted()
}
