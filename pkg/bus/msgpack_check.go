package bus

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// maxMsgpackDepth bounds the nesting of decoded values (schemas included).
const maxMsgpackDepth = 128

var errMsgpackTruncated = errors.New("msgpack: truncated or malformed value")

// checkMsgpack walks one msgpack value without allocating and refuses any
// length prefix larger than the bytes that follow it. The decoder trusts
// length prefixes when it sizes slices and maps, so without this check a
// 15-byte message that declares a 2^31-element array exhausts memory.
func checkMsgpack(b []byte) error {
	rest, err := skipMsgpack(b, 0)
	if err != nil {
		return err
	}
	_ = rest
	return nil
}

func need(b []byte, n uint64) error {
	if uint64(len(b)) < n {
		return errMsgpackTruncated
	}
	return nil
}

func skipMsgpack(b []byte, depth int) ([]byte, error) {
	if depth > maxMsgpackDepth {
		return nil, fmt.Errorf("msgpack: nested deeper than %d levels", maxMsgpackDepth)
	}
	if len(b) == 0 {
		return nil, errMsgpackTruncated
	}
	c := b[0]
	b = b[1:]
	var n uint64 // length of a str/bin/ext payload, or element count
	var err error
	switch {
	case c <= 0x7f || c >= 0xe0, c == 0xc0, c == 0xc2, c == 0xc3:
		return b, nil
	case c >= 0x80 && c <= 0x8f:
		return skipItems(b, uint64(c&0x0f)*2, depth)
	case c >= 0x90 && c <= 0x9f:
		return skipItems(b, uint64(c&0x0f), depth)
	case c >= 0xa0 && c <= 0xbf:
		n = uint64(c & 0x1f)
	case c == 0xc4 || c == 0xd9:
		n, b, err = readLen(b, 1)
	case c == 0xc5 || c == 0xda:
		n, b, err = readLen(b, 2)
	case c == 0xc6 || c == 0xdb:
		n, b, err = readLen(b, 4)
	case c == 0xc7, c == 0xc8, c == 0xc9: // ext 8/16/32: length, type, data
		n, b, err = readLen(b, map[byte]int{0xc7: 1, 0xc8: 2, 0xc9: 4}[c])
		n++ // the type byte
	case c == 0xca:
		n = 4
	case c == 0xcb:
		n = 8
	case c >= 0xcc && c <= 0xcf:
		n = 1 << (c - 0xcc)
	case c >= 0xd0 && c <= 0xd3:
		n = 1 << (c - 0xd0)
	case c >= 0xd4 && c <= 0xd8: // fixext 1..16: type + data
		n = 1 + 1<<(c-0xd4)
	case c == 0xdc, c == 0xde, c == 0xdd, c == 0xdf: // array/map 16/32
		w := 2
		if c == 0xdd || c == 0xdf {
			w = 4
		}
		cnt, rest, err := readLen(b, w)
		if err != nil {
			return nil, err
		}
		if c == 0xde || c == 0xdf {
			cnt *= 2
		}
		return skipItems(rest, cnt, depth)
	default: // 0xc1 is never used
		return nil, fmt.Errorf("msgpack: invalid code %#x", c)
	}
	if err != nil {
		return nil, err
	}
	if err := need(b, n); err != nil {
		return nil, err
	}
	return b[n:], nil
}

// readLen reads a w-byte (1, 2 or 4) big-endian length from the head of b.
func readLen(b []byte, w int) (uint64, []byte, error) {
	if err := need(b, uint64(w)); err != nil {
		return 0, nil, err
	}
	switch w {
	case 1:
		return uint64(b[0]), b[1:], nil
	case 2:
		return uint64(binary.BigEndian.Uint16(b)), b[2:], nil
	}
	return uint64(binary.BigEndian.Uint32(b)), b[4:], nil
}

func skipItems(b []byte, n uint64, depth int) ([]byte, error) {
	// Every item takes at least one byte.
	if err := need(b, n); err != nil {
		return nil, err
	}
	var err error
	for i := uint64(0); i < n; i++ {
		if b, err = skipMsgpack(b, depth+1); err != nil {
			return nil, err
		}
	}
	return b, nil
}
