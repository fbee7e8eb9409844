package patchverify

import (
	"bytes"
	"encoding/binary"
	"fmt"
)

// checkXZ walks the structure of an xz file held in memory (streams from
// the end, each stream's index, each block's header) and refuses it unless
// every block uses the LZMA2 filter alone with a dictionary of at most
// maxDict bytes, and all blocks' dictionaries together come to at most
// 2*maxDict. github.com/ulikunitz/xz allocates the dictionary a block header
// asks for, up to 4 GiB, before reading any data, and again for every
// block: this walk is what keeps a 100-byte file from costing gigabytes,
// and a 1 MiB file of 256 tiny blocks with 64 MiB dictionaries from costing
// 16 GiB of allocation (7 s here). The checksums are left to the decoder.
func checkXZ(data []byte, maxDict int64) error {
	_, err := xzSize(data, maxDict)
	return err
}

// xzSize is checkXZ, and returns the uncompressed size the indexes state
// (saturated at 1 TiB): a hint that sizes the output buffer, not trusted.
func xzSize(data []byte, maxDict int64) (int64, error) {
	end := len(data)
	streams := 0
	budget := 2 * maxDict
	var size int64
	for end > 0 {
		// Stream padding: groups of four zero bytes between and after streams.
		for end >= 4 && bytes.Equal(data[end-4:end], []byte{0, 0, 0, 0}) {
			end -= 4
		}
		if end == 0 {
			break
		}
		start, err := checkXZStream(data[:end], maxDict, &budget, &size)
		if err != nil {
			return 0, fmt.Errorf("%w: xz: %v", ErrUnsafeArchive, err)
		}
		end = start
		streams++
	}
	if streams == 0 {
		return 0, fmt.Errorf("%w: xz: no stream", ErrUnsafeArchive)
	}
	return size, nil
}

var xzHeaderMagic = []byte{0xfd, '7', 'z', 'X', 'Z', 0}

// checkXZStream checks the stream that ends at the end of data and returns
// where it starts; it adds the stream's uncompressed size to *size.
func checkXZStream(data []byte, maxDict int64, budget *int64, size *int64) (int, error) {
	const hdrLen, footLen = 12, 12
	if len(data) < hdrLen+footLen {
		return 0, fmt.Errorf("truncated stream")
	}
	foot := data[len(data)-footLen:]
	if foot[10] != 'Y' || foot[11] != 'Z' {
		return 0, fmt.Errorf("no stream footer")
	}
	backward := (int64(binary.LittleEndian.Uint32(foot[4:8])) + 1) * 4
	indexEnd := len(data) - footLen
	if backward > int64(indexEnd-hdrLen) {
		return 0, fmt.Errorf("index larger than the stream")
	}
	indexStart := indexEnd - int(backward)
	index := data[indexStart:indexEnd]
	if index[0] != 0 {
		return 0, fmt.Errorf("bad index indicator")
	}
	pos := 1
	count, ok := uvarint(index, &pos)
	if !ok || count > uint64(len(index)) {
		return 0, fmt.Errorf("bad index record count")
	}
	records := make([]int64, 0, count)
	var total int64
	for range count {
		unpadded, ok1 := uvarint(index, &pos)
		uncompressed, ok2 := uvarint(index, &pos)
		if !ok1 || !ok2 || unpadded < 5 || unpadded > uint64(len(data)) {
			return 0, fmt.Errorf("bad index record")
		}
		*size = int64(min(uint64(*size)+min(uncompressed, 1<<40), 1<<40))
		padded := (int64(unpadded) + 3) &^ 3
		records = append(records, padded)
		total += padded
	}
	start := int64(indexStart) - total - hdrLen
	if start < 0 {
		return 0, fmt.Errorf("blocks larger than the stream")
	}
	if !bytes.HasPrefix(data[start:], xzHeaderMagic) {
		return 0, fmt.Errorf("no stream header")
	}
	blk := start + hdrLen
	for _, padded := range records {
		dict, err := checkXZBlockHeader(data[blk:blk+padded], maxDict)
		if err != nil {
			return 0, err
		}
		if *budget -= dict; *budget < 0 {
			return 0, fmt.Errorf("blocks' LZMA2 dictionaries add up to more than %d bytes", 2*maxDict)
		}
		blk += padded
	}
	return int(start), nil
}

func checkXZBlockHeader(b []byte, maxDict int64) (int64, error) {
	if len(b) == 0 || b[0] == 0 {
		return 0, fmt.Errorf("bad block header")
	}
	size := (int(b[0]) + 1) * 4
	if size > len(b) {
		return 0, fmt.Errorf("block header larger than its block")
	}
	h := b[:size]
	flags := h[1]
	if flags&0x3c != 0 {
		return 0, fmt.Errorf("reserved block flags set")
	}
	pos := 2
	for _, present := range []bool{flags&0x40 != 0, flags&0x80 != 0} {
		if present {
			if _, ok := uvarint(h, &pos); !ok {
				return 0, fmt.Errorf("bad block size field")
			}
		}
	}
	if flags&3 != 0 {
		return 0, fmt.Errorf("filter chain other than LZMA2 alone")
	}
	id, ok1 := uvarint(h, &pos)
	propLen, ok2 := uvarint(h, &pos)
	if !ok1 || !ok2 || id != 0x21 || propLen != 1 || pos >= len(h) {
		return 0, fmt.Errorf("filter other than LZMA2")
	}
	bits := h[pos] & 0x3f
	if h[pos]&0xc0 != 0 || bits > 40 {
		return 0, fmt.Errorf("bad LZMA2 dictionary size")
	}
	dict := int64(0xffffffff)
	if bits < 40 {
		dict = int64(2|bits&1) << (bits/2 + 11)
	}
	if dict > maxDict {
		return 0, fmt.Errorf("LZMA2 dictionary of %d bytes, more than %d", dict, maxDict)
	}
	return dict, nil
}

// uvarint reads xz's multibyte integer (at most 9 bytes) at *pos.
func uvarint(b []byte, pos *int) (uint64, bool) {
	var v uint64
	for i := 0; i < 9; i++ {
		if *pos >= len(b) {
			return 0, false
		}
		c := b[*pos]
		*pos++
		v |= uint64(c&0x7f) << (7 * i)
		if c&0x80 == 0 {
			if c == 0 && i > 0 {
				return 0, false // not minimal
			}
			return v, true
		}
	}
	return 0, false
}
