package api

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"

	"github.com/rewind-dr/rewind/internal/config"
	"github.com/rewind-dr/rewind/internal/errs"
)

// MinTokenLength is the shortest token value LoadTokens accepts.
const MinTokenLength = 16 // bytes

// Token is an API token: a name for logs, a role and the secret value clients send as
// "Authorization: Bearer <value>".
type Token struct {
	Name  string
	Role  config.Role
	Value string
}

// rank orders roles; a route needs at least its role's rank. The agent role stands
// apart: only agent routes accept it, and they accept admin too.
func rank(r config.Role) int {
	switch r {
	case config.RoleViewer:
		return 1
	case config.RoleOperator:
		return 2
	case config.RoleAdmin:
		return 3
	case config.RoleAgent:
		return -1
	}
	return 0
}

// LoadTokens reads the value of each configured token from its token file (surrounding
// white space trimmed). Errors are errs.Invalid (or errs.NotFound for a missing file) and
// name the token and the file: an unreadable or empty file, a value shorter than
// MinTokenLength, or two tokens with the same value.
func LoadTokens(auth config.Auth) ([]Token, error) {
	const op = "api.LoadTokens"
	out := make([]Token, 0, len(auth.Tokens))
	seen := map[string]string{}
	for _, t := range auth.Tokens {
		if rank(t.Role) == 0 {
			return nil, errs.Errorf(op, errs.Invalid, "token %q: role %q is not viewer, operator, admin or agent", t.Name, t.Role)
		}
		b, err := os.ReadFile(t.TokenFile)
		if err != nil {
			kind := errs.Invalid
			if errors.Is(err, os.ErrNotExist) {
				kind = errs.NotFound
			}
			return nil, errs.E(op, kind, fmt.Errorf("token %q: %w", t.Name, err)).
				WithHint("create the token file, e.g. head -c 32 /dev/urandom | base64 > " + t.TokenFile + "; chmod 600 " + t.TokenFile)
		}
		v := strings.TrimSpace(string(b))
		if len(v) < MinTokenLength {
			return nil, errs.Errorf(op, errs.Invalid, "token %q: %s holds %d bytes; a token needs at least %d", t.Name, t.TokenFile, len(v), MinTokenLength).
				WithHint("write a random value: head -c 32 /dev/urandom | base64 > " + t.TokenFile)
		}
		if other, ok := seen[v]; ok {
			return nil, errs.Errorf(op, errs.Invalid, "tokens %q and %q have the same value", other, t.Name).
				WithHint("give every token its own random value")
		}
		seen[v] = t.Name
		out = append(out, Token{Name: t.Name, Role: t.Role, Value: v})
	}
	return out, nil
}

// CheckListen decides whether the server may listen on addr (host:port) with the given
// number of tokens: without tokens every call is allowed, so only a loopback address
// (127.0.0.0/8, ::1 or localhost) is accepted. errs.Invalid otherwise, or when addr is not
// host:port.
func CheckListen(addr string, tokens int) error {
	const op = "api.CheckListen"
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return errs.Errorf(op, errs.Invalid, "listen address %q is not host:port: %v", addr, err).
			WithHint("write 127.0.0.1:8420 or [::1]:8420")
	}
	if tokens > 0 {
		return nil
	}
	if isLoopback(host) {
		return nil
	}
	shown := host
	if shown == "" {
		shown = "every interface"
	}
	return errs.Errorf(op, errs.Invalid, "listen address %q (%s) is not loopback and no API token is configured: anyone who can reach it could run restores", addr, shown).
		WithHint("add tokens under auth.tokens in the config, or listen on 127.0.0.1")
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// tokenHash is a token value's SHA-256: comparing fixed-length hashes in constant time
// tells nothing about a value's length either.
type tokenHash [sha256.Size]byte

// authenticate returns the token that r carries. With no tokens configured every request
// acts as an anonymous admin. errs.Unauthorized for a missing, malformed or unknown token.
func (s *Server) authenticate(r *http.Request) (Token, error) {
	const op = "api.auth"
	if len(s.tokens) == 0 {
		return Token{Name: "anonymous", Role: config.RoleAdmin}, nil
	}
	h := r.Header.Get("Authorization")
	if h == "" {
		return Token{}, errs.Errorf(op, errs.Unauthorized, "this server requires a token and the request carries none").
			WithHint("set REWIND_TOKEN, or send the header Authorization: Bearer <token>")
	}
	scheme, value, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(value) == "" {
		return Token{}, errs.Errorf(op, errs.Unauthorized, "the Authorization header is not \"Bearer <token>\"").
			WithHint("send the header Authorization: Bearer <token>")
	}
	sum := tokenHash(sha256.Sum256([]byte(strings.TrimSpace(value))))
	found := -1
	for i := range s.tokens {
		// Every token is compared, so the time taken does not tell which one matched.
		if subtle.ConstantTimeCompare(sum[:], s.hashes[i][:]) == 1 {
			found = i
		}
	}
	if found < 0 {
		return Token{}, errs.Errorf(op, errs.Unauthorized, "the token is not valid on this server").
			WithHint("check REWIND_TOKEN against the server's token files")
	}
	return s.tokens[found], nil
}

// authorize checks that t may call a route that needs role.
func authorize(t Token, method, pattern string, need config.Role) error {
	switch {
	case need == config.RoleAgent && (t.Role == config.RoleAgent || t.Role == config.RoleAdmin):
		return nil
	case need == config.RoleAgent:
		return errs.E("api.auth", errs.Unauthorized,
			fmt.Errorf("token %q has role %s; %s %s is for agents (%w)", t.Name, t.Role, method, pattern, errForbidden)).
			WithHint("give the agent a token with role agent")
	case t.Role == config.RoleAgent:
		return errs.E("api.auth", errs.Unauthorized,
			fmt.Errorf("token %q has role agent, which may only claim and report jobs; %s %s needs %s (%w)", t.Name, method, pattern, need, errForbidden)).
			WithHint("use a token with role " + string(need) + " or higher")
	case rank(t.Role) >= rank(need):
		return nil
	}
	return errs.E("api.auth", errs.Unauthorized,
		fmt.Errorf("token %q has role %s; %s %s needs %s (%w)", t.Name, t.Role, method, pattern, need, errForbidden)).
		WithHint("use a token with role " + string(need) + " or higher")
}

// ListenNotice returns the line the server prints when it starts listening on addr with
// the given number of tokens: it says plainly when every call is allowed.
func ListenNotice(addr string, tokens int) string {
	if tokens == 0 {
		return "rewind server: listening on " + addr + " with NO authentication (no API tokens configured): every local caller may do everything; add auth.tokens to the config to require tokens"
	}
	return fmt.Sprintf("rewind server: listening on %s; %d API token(s) configured", addr, tokens)
}
