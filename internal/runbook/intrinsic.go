package runbook

import (
	"crypto/md5"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash"
	"math/big"
	mrand "math/rand/v2"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Intrinsic functions: States.Format('{} and {}', $.a, States.UUID()). An argument is a
// single-quoted string literal (escapes \' \{ \} \\), a number, true, false, null, a path
// ($.x or $$.x) or a nested call.

const maxIntrinsicDepth = 10

type intrinsicArg struct {
	kind    byte // 's' string, 'v' literal value, 'p' path, 'c' call
	str     string
	raw     string // string literal with escapes kept (for States.Format templates)
	val     any
	path    *pathExpr
	call    *intrinsic
	literal bool
}

type intrinsic struct {
	name string
	args []intrinsicArg
}

var intrinsicArity = map[string][2]int{ // min, max (-1 = unbounded)
	"States.Format":         {1, -1},
	"States.StringToJson":   {1, 1},
	"States.JsonToString":   {1, 1},
	"States.Array":          {0, -1},
	"States.ArrayPartition": {2, 2},
	"States.ArrayContains":  {2, 2},
	"States.ArrayRange":     {3, 3},
	"States.ArrayGetItem":   {2, 2},
	"States.ArrayLength":    {1, 1},
	"States.ArrayUnique":    {1, 1},
	"States.Base64Encode":   {1, 1},
	"States.Base64Decode":   {1, 1},
	"States.Hash":           {2, 2},
	"States.JsonMerge":      {3, 3},
	"States.MathRandom":     {2, 3},
	"States.MathAdd":        {2, 2},
	"States.StringSplit":    {2, 2},
	"States.UUID":           {0, 0},
}

// isIntrinsic reports whether a ".$" value is an intrinsic function call.
func isIntrinsic(s string) bool { return strings.HasPrefix(strings.TrimSpace(s), "States.") }

// ParseIntrinsic checks the syntax of an intrinsic function call, for tools and tests.
func ParseIntrinsic(src string) error {
	_, err := parseIntrinsic(src)
	return err
}

func parseIntrinsic(src string) (*intrinsic, error) {
	p := &iparser{src: src}
	p.skipSpace()
	call, err := p.call(0)
	if err != nil {
		return nil, fmt.Errorf("intrinsic %q: %v", src, err)
	}
	p.skipSpace()
	if p.pos != len(p.src) {
		return nil, fmt.Errorf("intrinsic %q: unexpected %q at offset %d", src, p.src[p.pos:], p.pos)
	}
	return call, nil
}

type iparser struct {
	src string
	pos int
}

func (p *iparser) skipSpace() {
	for p.pos < len(p.src) && (p.src[p.pos] == ' ' || p.src[p.pos] == '\t' || p.src[p.pos] == '\n' || p.src[p.pos] == '\r') {
		p.pos++
	}
}

func (p *iparser) call(depth int) (*intrinsic, error) {
	if depth >= maxIntrinsicDepth {
		return nil, fmt.Errorf("calls nested deeper than %d", maxIntrinsicDepth)
	}
	start := p.pos
	for p.pos < len(p.src) {
		c := p.src[p.pos]
		if c == '.' || c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' {
			p.pos++
			continue
		}
		break
	}
	name := p.src[start:p.pos]
	ar, ok := intrinsicArity[name]
	if !ok {
		return nil, fmt.Errorf("unknown function %q at offset %d", name, start)
	}
	p.skipSpace()
	if p.pos >= len(p.src) || p.src[p.pos] != '(' {
		return nil, fmt.Errorf("expected ( after %s", name)
	}
	p.pos++
	in := &intrinsic{name: name}
	p.skipSpace()
	if p.pos < len(p.src) && p.src[p.pos] == ')' {
		p.pos++
	} else {
		for {
			p.skipSpace()
			a, err := p.arg(depth)
			if err != nil {
				return nil, err
			}
			in.args = append(in.args, a)
			p.skipSpace()
			if p.pos >= len(p.src) {
				return nil, fmt.Errorf("missing ) to close %s", name)
			}
			if p.src[p.pos] == ',' {
				p.pos++
				continue
			}
			if p.src[p.pos] == ')' {
				p.pos++
				break
			}
			return nil, fmt.Errorf("expected , or ) at offset %d", p.pos)
		}
	}
	if len(in.args) < ar[0] || ar[1] >= 0 && len(in.args) > ar[1] {
		want := strconv.Itoa(ar[0])
		if ar[1] < 0 {
			want = "at least " + want
		} else if ar[1] != ar[0] {
			want = fmt.Sprintf("%d to %d", ar[0], ar[1])
		}
		return nil, fmt.Errorf("%s takes %s arguments, got %d", name, want, len(in.args))
	}
	return in, nil
}

func (p *iparser) arg(depth int) (intrinsicArg, error) {
	if p.pos >= len(p.src) {
		return intrinsicArg{}, fmt.Errorf("missing argument at end of input")
	}
	c := p.src[p.pos]
	switch {
	case c == '\'':
		return p.stringLit()
	case c == '$':
		return p.pathArg()
	case c == '-' || c >= '0' && c <= '9':
		start := p.pos
		p.pos++
		for p.pos < len(p.src) && strings.IndexByte("0123456789.eE+-", p.src[p.pos]) >= 0 {
			p.pos++
		}
		lit := p.src[start:p.pos]
		if _, err := strconv.ParseFloat(lit, 64); err != nil || !json.Valid([]byte(lit)) {
			return intrinsicArg{}, fmt.Errorf("bad number %q at offset %d", lit, start)
		}
		return intrinsicArg{kind: 'v', val: json.Number(lit), literal: true}, nil
	case strings.HasPrefix(p.src[p.pos:], "States."):
		c, err := p.call(depth + 1)
		if err != nil {
			return intrinsicArg{}, err
		}
		return intrinsicArg{kind: 'c', call: c}, nil
	}
	for _, kw := range []struct {
		s string
		v any
	}{{"true", true}, {"false", false}, {"null", nil}} {
		if strings.HasPrefix(p.src[p.pos:], kw.s) {
			p.pos += len(kw.s)
			return intrinsicArg{kind: 'v', val: kw.v, literal: true}, nil
		}
	}
	return intrinsicArg{}, fmt.Errorf("unexpected %q at offset %d (strings use single quotes)", p.src[p.pos:], p.pos)
}

func (p *iparser) stringLit() (intrinsicArg, error) {
	start := p.pos
	p.pos++
	var b strings.Builder
	for p.pos < len(p.src) {
		c := p.src[p.pos]
		switch c {
		case '\\':
			if p.pos+1 >= len(p.src) {
				return intrinsicArg{}, fmt.Errorf("unterminated escape at offset %d", p.pos)
			}
			e := p.src[p.pos+1]
			if strings.IndexByte(`'{}\`, e) < 0 {
				return intrinsicArg{}, fmt.Errorf(`unknown escape \%c at offset %d (escape only ' { } and \)`, e, p.pos)
			}
			b.WriteByte(e)
			p.pos += 2
		case '\'':
			raw := p.src[start+1 : p.pos]
			p.pos++
			return intrinsicArg{kind: 's', str: b.String(), raw: raw, literal: true}, nil
		default:
			b.WriteByte(c)
			p.pos++
		}
	}
	return intrinsicArg{}, fmt.Errorf("unterminated string starting at offset %d", start)
}

// pathArg scans a path up to the next top-level ',' or ')'.
func (p *iparser) pathArg() (intrinsicArg, error) {
	start := p.pos
	depth := 0
	var quote byte
	for p.pos < len(p.src) {
		c := p.src[p.pos]
		if quote != 0 {
			if c == '\\' {
				p.pos = min(p.pos+2, len(p.src)) // a backslash at the very end escapes nothing
				continue
			}
			if c == quote {
				quote = 0
			}
			p.pos++
			continue
		}
		switch c {
		case '\'', '"':
			quote = c
		case '[', '(':
			depth++
		case ']':
			depth--
		case ')':
			if depth == 0 {
				goto done
			}
			depth--
		case ',':
			if depth == 0 {
				goto done
			}
		}
		p.pos++
	}
done:
	src := strings.TrimSpace(p.src[start:p.pos])
	pe, err := compilePath(src)
	if err != nil {
		return intrinsicArg{}, err
	}
	return intrinsicArg{kind: 'p', path: pe}, nil
}

// intrinsicEnv supplies randomness to intrinsic functions.
type intrinsicEnv struct {
	rand func() uint64 // nil: crypto/rand
}

func (env intrinsicEnv) random() uint64 {
	if env.rand != nil {
		return env.rand()
	}
	var b [8]byte
	_, _ = rand.Read(b[:])
	var v uint64
	for _, x := range b {
		v = v<<8 | uint64(x)
	}
	return v
}

func (in *intrinsic) eval(input, ctxObj any, env intrinsicEnv) (any, error) {
	args := make([]any, len(in.args))
	for i, a := range in.args {
		switch a.kind {
		case 's':
			args[i] = a.str
		case 'v':
			args[i] = a.val
		case 'p':
			v, err := a.path.eval(input, ctxObj)
			if err != nil {
				return nil, fmt.Errorf("%s argument %d: %v", in.name, i+1, err)
			}
			args[i] = v
		case 'c':
			v, err := a.call.eval(input, ctxObj, env)
			if err != nil {
				return nil, err
			}
			args[i] = v
		}
	}
	v, err := in.apply(args, env)
	if err != nil {
		return nil, fmt.Errorf("%s: %v", in.name, err)
	}
	return v, nil
}

func argString(args []any, i int) (string, error) {
	s, ok := args[i].(string)
	if !ok {
		return "", fmt.Errorf("argument %d must be a string, got %s", i+1, typeName(args[i]))
	}
	return s, nil
}

func argArray(args []any, i int) ([]any, error) {
	a, ok := args[i].([]any)
	if !ok {
		return nil, fmt.Errorf("argument %d must be an array, got %s", i+1, typeName(args[i]))
	}
	return a, nil
}

func argInt(args []any, i int) (int64, error) {
	n, ok := asInt(args[i])
	if !ok {
		return 0, fmt.Errorf("argument %d must be an integer, got %s", i+1, mustJSON(args[i]))
	}
	return n, nil
}

func (in *intrinsic) apply(args []any, env intrinsicEnv) (any, error) {
	switch in.name {
	case "States.Format":
		tmpl, err := argString(args, 0)
		if err != nil {
			return nil, err
		}
		escaped := in.args[0].kind == 's'
		if escaped {
			tmpl = in.args[0].raw
		}
		return format(tmpl, escaped, args[1:])
	case "States.StringToJson":
		s, err := argString(args, 0)
		if err != nil {
			return nil, err
		}
		v, err := decodeJSON([]byte(s))
		if err != nil {
			return nil, fmt.Errorf("argument is not JSON: %v", err)
		}
		return v, nil
	case "States.JsonToString":
		b, err := encodeJSON(args[0])
		if err != nil {
			return nil, err
		}
		return string(b), nil
	case "States.Array":
		out := make([]any, len(args))
		copy(out, args)
		return out, nil
	case "States.ArrayPartition":
		a, err := argArray(args, 0)
		if err != nil {
			return nil, err
		}
		n, err := argInt(args, 1)
		if err != nil {
			return nil, err
		}
		if n <= 0 {
			return nil, fmt.Errorf("chunk size must be positive, got %d", n)
		}
		out := []any{}
		for i := 0; i < len(a); i += int(n) {
			end := min(i+int(n), len(a))
			chunk := make([]any, end-i)
			copy(chunk, a[i:end])
			out = append(out, chunk)
		}
		return out, nil
	case "States.ArrayContains":
		a, err := argArray(args, 0)
		if err != nil {
			return nil, err
		}
		for _, e := range a {
			if jsonEqual(e, args[1]) {
				return true, nil
			}
		}
		return false, nil
	case "States.ArrayRange":
		start, err := argInt(args, 0)
		if err != nil {
			return nil, err
		}
		end, err := argInt(args, 1)
		if err != nil {
			return nil, err
		}
		step, err := argInt(args, 2)
		if err != nil {
			return nil, err
		}
		if step == 0 {
			return nil, fmt.Errorf("step must not be 0")
		}
		out := []any{}
		for i := start; step > 0 && i <= end || step < 0 && i >= end; i += step {
			if len(out) == 1000 {
				return nil, fmt.Errorf("the range has more than 1000 elements")
			}
			out = append(out, intNumber(i))
		}
		return out, nil
	case "States.ArrayGetItem":
		a, err := argArray(args, 0)
		if err != nil {
			return nil, err
		}
		i, err := argInt(args, 1)
		if err != nil {
			return nil, err
		}
		if i < 0 || i >= int64(len(a)) {
			return nil, fmt.Errorf("index %d is out of range for an array of %d", i, len(a))
		}
		return a[i], nil
	case "States.ArrayLength":
		a, err := argArray(args, 0)
		if err != nil {
			return nil, err
		}
		return intNumber(int64(len(a))), nil
	case "States.ArrayUnique":
		a, err := argArray(args, 0)
		if err != nil {
			return nil, err
		}
		out := []any{}
	next:
		for _, e := range a {
			for _, seen := range out {
				if jsonEqual(e, seen) {
					continue next
				}
			}
			out = append(out, e)
		}
		return out, nil
	case "States.Base64Encode":
		s, err := argString(args, 0)
		if err != nil {
			return nil, err
		}
		if len(s) > 10000 {
			return nil, fmt.Errorf("input is longer than 10000 characters")
		}
		return base64.StdEncoding.EncodeToString([]byte(s)), nil
	case "States.Base64Decode":
		s, err := argString(args, 0)
		if err != nil {
			return nil, err
		}
		if len(s) > 10000 {
			return nil, fmt.Errorf("input is longer than 10000 characters")
		}
		b, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			return nil, fmt.Errorf("argument is not base64: %v", err)
		}
		if !utf8.Valid(b) {
			return nil, fmt.Errorf("decoded data is not UTF-8 text")
		}
		return string(b), nil
	case "States.Hash":
		var data string
		if s, ok := args[0].(string); ok {
			data = s
		} else {
			b, err := encodeJSON(args[0])
			if err != nil {
				return nil, err
			}
			data = string(b)
		}
		alg, err := argString(args, 1)
		if err != nil {
			return nil, err
		}
		var h hash.Hash
		switch alg {
		case "MD5":
			h = md5.New()
		case "SHA-1":
			h = sha1.New()
		case "SHA-256":
			h = sha256.New()
		case "SHA-384":
			h = sha512.New384()
		case "SHA-512":
			h = sha512.New()
		default:
			return nil, fmt.Errorf("unknown algorithm %q (use MD5, SHA-1, SHA-256, SHA-384 or SHA-512)", alg)
		}
		h.Write([]byte(data))
		return hex.EncodeToString(h.Sum(nil)), nil
	case "States.JsonMerge":
		a, ok1 := args[0].(map[string]any)
		b, ok2 := args[1].(map[string]any)
		if !ok1 || !ok2 {
			return nil, fmt.Errorf("arguments 1 and 2 must be objects, got %s and %s", typeName(args[0]), typeName(args[1]))
		}
		deep, ok := args[2].(bool)
		if !ok {
			return nil, fmt.Errorf("argument 3 must be a boolean")
		}
		if deep {
			return nil, fmt.Errorf("deep merge is not supported: pass false")
		}
		out := make(map[string]any, len(a)+len(b))
		for k, v := range a {
			out[k] = v
		}
		for k, v := range b {
			out[k] = v
		}
		return out, nil
	case "States.MathRandom":
		lo, err := argInt(args, 0)
		if err != nil {
			return nil, err
		}
		hi, err := argInt(args, 1)
		if err != nil {
			return nil, err
		}
		if hi <= lo {
			return nil, fmt.Errorf("end (%d) must be greater than start (%d)", hi, lo)
		}
		var r uint64
		if len(args) == 3 {
			seed, err := argInt(args, 2)
			if err != nil {
				return nil, err
			}
			r = mrand.New(mrand.NewPCG(uint64(seed), 0)).Uint64()
		} else {
			r = env.random()
		}
		span := new(big.Int).Sub(big.NewInt(hi), big.NewInt(lo))
		off := new(big.Int).Mod(new(big.Int).SetUint64(r), span)
		return intNumber(lo + off.Int64()), nil
	case "States.MathAdd":
		a, err := argInt(args, 0)
		if err != nil {
			return nil, err
		}
		b, err := argInt(args, 1)
		if err != nil {
			return nil, err
		}
		sum := new(big.Int).Add(big.NewInt(a), big.NewInt(b))
		if !sum.IsInt64() {
			return nil, fmt.Errorf("%d + %d overflows", a, b)
		}
		return intNumber(sum.Int64()), nil
	case "States.StringSplit":
		s, err := argString(args, 0)
		if err != nil {
			return nil, err
		}
		d, err := argString(args, 1)
		if err != nil {
			return nil, err
		}
		parts := strings.FieldsFunc(s, func(r rune) bool { return strings.ContainsRune(d, r) })
		out := make([]any, len(parts))
		for i, p := range parts {
			out[i] = p
		}
		return out, nil
	case "States.UUID":
		var b [16]byte
		for i := 0; i < 16; i += 8 {
			r := env.random()
			for j := 0; j < 8; j++ {
				b[i+j] = byte(r >> (8 * j))
			}
		}
		b[6] = b[6]&0x0f | 0x40
		b[8] = b[8]&0x3f | 0x80
		h := hex.EncodeToString(b[:])
		return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:], nil
	}
	return nil, fmt.Errorf("unknown function")
}

// format fills {} placeholders. In a literal template, \{ and \} are literal braces.
func format(tmpl string, escaped bool, args []any) (string, error) {
	var b strings.Builder
	n := 0
	for i := 0; i < len(tmpl); i++ {
		c := tmpl[i]
		if escaped && c == '\\' && i+1 < len(tmpl) {
			b.WriteByte(tmpl[i+1])
			i++
			continue
		}
		if c == '{' && i+1 < len(tmpl) && tmpl[i+1] == '}' {
			if n >= len(args) {
				return "", fmt.Errorf("the template has more {} than the %d arguments given", len(args))
			}
			switch v := args[n].(type) {
			case string:
				b.WriteString(v)
			default:
				j, err := encodeJSON(v)
				if err != nil {
					return "", err
				}
				b.Write(j)
			}
			n++
			i++
			continue
		}
		b.WriteByte(c)
	}
	if n != len(args) {
		return "", fmt.Errorf("the template has %d {} but %d arguments were given", n, len(args))
	}
	return b.String(), nil
}
