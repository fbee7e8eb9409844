package patchverify

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"fmt"
	"strings"
)

// ModuleInfo is what a module's .modinfo section says about it: what the
// kernel and modinfo(8) read. VerifyPatch reads it from the signed content
// only, so it is as trustworthy as the signature.
type ModuleInfo struct {
	// Name is name=, the module's name as the kernel knows it.
	Name string
	// Version is version=, empty when the module has none.
	Version string
	// Vermagic is vermagic=, e.g. "6.1.0-18-amd64 SMP preempt mod_unload".
	Vermagic string
	// Livepatch is true when the module says livepatch=Y.
	Livepatch bool
}

// Release returns the kernel release the module was built for: the first
// word of vermagic.
func (m *ModuleInfo) Release() string {
	r, _, _ := strings.Cut(m.Vermagic, " ")
	return r
}

// Bounds on what a .modinfo reader accepts: real sections are a few hundred
// bytes to a few KiB.
const (
	maxModinfoSize = 64 << 10
	maxSections    = 1 << 16
)

// ReadModuleInfo reads the .modinfo section of an ELF kernel module with
// debug/elf, after checking the ELF header's section table against the
// module's size; a malformed ELF, a missing or oversized .modinfo, or a
// repeated or unprintable name, version, vermagic or livepatch field is
// ErrMalformedModule. Give it the content a signature covers
// (Signer.Signature.Content) so that what it reads is what was signed.
func ReadModuleInfo(module []byte) (info *ModuleInfo, err error) {
	defer func() {
		// debug/elf is not written for hostile input; the bounds below keep
		// it to what it handles, and this keeps any slip a refusal.
		if r := recover(); r != nil {
			info, err = nil, fmt.Errorf("%w: unreadable ELF", ErrMalformedModule)
		}
	}()
	if err := checkELFHeader(module); err != nil {
		return nil, err
	}
	f, err := elf.NewFile(bytes.NewReader(module))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformedModule, err)
	}
	var sec *elf.Section
	for _, s := range f.Sections {
		if s.Name == ".modinfo" {
			if sec != nil {
				return nil, fmt.Errorf("%w: two .modinfo sections", ErrMalformedModule)
			}
			sec = s
		}
	}
	if sec == nil || sec.Type == elf.SHT_NOBITS {
		return nil, fmt.Errorf("%w: no .modinfo section", ErrMalformedModule)
	}
	if sec.Size > maxModinfoSize || sec.Offset > uint64(len(module)) || sec.Size > uint64(len(module))-sec.Offset {
		return nil, fmt.Errorf("%w: .modinfo section out of bounds", ErrMalformedModule)
	}
	if sec.Flags&elf.SHF_COMPRESSED != 0 {
		return nil, fmt.Errorf("%w: compressed .modinfo section", ErrMalformedModule)
	}
	return parseModinfo(module[sec.Offset : sec.Offset+sec.Size])
}

// checkELFHeader bounds the section header table before debug/elf reads it.
func checkELFHeader(b []byte) error {
	if len(b) < 64 || !bytes.HasPrefix(b, []byte(elf.ELFMAG)) {
		return fmt.Errorf("%w: not an ELF file", ErrMalformedModule)
	}
	var bo binary.ByteOrder
	switch elf.Data(b[elf.EI_DATA]) {
	case elf.ELFDATA2LSB:
		bo = binary.LittleEndian
	case elf.ELFDATA2MSB:
		bo = binary.BigEndian
	default:
		return fmt.Errorf("%w: bad ELF data encoding", ErrMalformedModule)
	}
	var shoff, shentsize, shnum uint64
	switch elf.Class(b[elf.EI_CLASS]) {
	case elf.ELFCLASS64:
		shoff, shentsize, shnum = bo.Uint64(b[0x28:]), uint64(bo.Uint16(b[0x3a:])), uint64(bo.Uint16(b[0x3c:]))
	case elf.ELFCLASS32:
		shoff, shentsize, shnum = uint64(bo.Uint32(b[0x20:])), uint64(bo.Uint16(b[0x2e:])), uint64(bo.Uint16(b[0x30:]))
	default:
		return fmt.Errorf("%w: bad ELF class", ErrMalformedModule)
	}
	if shnum == 0 || shnum >= maxSections || shentsize == 0 || shoff > uint64(len(b)) || shnum*shentsize > uint64(len(b))-shoff {
		// shnum 0 with the count in section 0 (more than 65279 sections)
		// is not something a module needs.
		return fmt.Errorf("%w: section header table out of bounds", ErrMalformedModule)
	}
	return nil
}

// parseModinfo reads NUL-separated key=value strings, as the kernel's
// get_modinfo does, refusing repeats of the fields VerifyPatch binds.
func parseModinfo(b []byte) (*ModuleInfo, error) {
	info := &ModuleInfo{}
	seen := map[string]bool{}
	for field := range bytes.SplitSeq(b, []byte{0}) {
		key, val, ok := strings.Cut(string(field), "=")
		if !ok {
			continue // padding between entries
		}
		switch key {
		case "name", "version", "vermagic", "livepatch":
		default:
			continue
		}
		if seen[key] {
			return nil, fmt.Errorf("%w: .modinfo repeats %s=", ErrMalformedModule, key)
		}
		seen[key] = true
		if strings.ContainsFunc(val, unsafeRune) {
			return nil, fmt.Errorf("%w: .modinfo %s= has a control character", ErrMalformedModule, key)
		}
		switch key {
		case "name":
			info.Name = val
		case "version":
			info.Version = val
		case "vermagic":
			info.Vermagic = val
		case "livepatch":
			info.Livepatch = val == "Y"
		}
	}
	if info.Name == "" || info.Release() == "" {
		return nil, fmt.Errorf("%w: .modinfo lacks name= or vermagic=", ErrMalformedModule)
	}
	return info, nil
}

// unsafeRune reports control and bidirectional-formatting characters, which
// have no place in names that end up in logs and on terminals.
func unsafeRune(r rune) bool {
	return r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) || r == 0xfffd ||
		(r >= 0x200e && r <= 0x200f) || (r >= 0x202a && r <= 0x202e) || (r >= 0x2066 && r <= 0x2069) || r == 0x061c
}
