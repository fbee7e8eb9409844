// Package kmodtest builds minimal kernel-module ELF files: an x86-64
// relocatable object whose only content is a .modinfo section, which
// debug/elf and modinfo(8) read like a real module's. Tests, the demo and
// the examples' integration tests use it to make modules that say which
// kernel, name and version they are for.
package kmodtest

import (
	"encoding/binary"
	"fmt"
	"strings"
)

// Module returns an ELF object whose .modinfo holds fields ("name=x",
// "vermagic=6.1.0-18-amd64 SMP mod_unload ", ...), NUL-terminated in order.
func Module(fields ...string) []byte {
	var modinfo []byte
	for _, f := range fields {
		modinfo = append(modinfo, f...)
		modinfo = append(modinfo, 0)
	}
	shstrtab := []byte("\x00.modinfo\x00.shstrtab\x00")
	const ehdr, shdr = 64, 64
	modOff := uint64(ehdr)
	strOff := modOff + uint64(len(modinfo))
	shOff := (strOff + uint64(len(shstrtab)) + 7) &^ 7
	b := make([]byte, shOff+3*shdr)
	copy(b, "\x7fELF")
	b[4], b[5], b[6] = 2, 1, 1 // ELFCLASS64, little-endian, EV_CURRENT
	le := binary.LittleEndian
	le.PutUint16(b[16:], 1)  // ET_REL
	le.PutUint16(b[18:], 62) // EM_X86_64
	le.PutUint32(b[20:], 1)
	le.PutUint64(b[40:], shOff)
	le.PutUint16(b[52:], ehdr)
	le.PutUint16(b[58:], shdr)
	le.PutUint16(b[60:], 3) // sections: null, .modinfo, .shstrtab
	le.PutUint16(b[62:], 2)
	copy(b[modOff:], modinfo)
	copy(b[strOff:], shstrtab)
	section := func(i int, name, typ uint32, flags, off, size, align uint64) {
		s := b[shOff+uint64(i)*shdr:]
		le.PutUint32(s[0:], name)
		le.PutUint32(s[4:], typ)
		le.PutUint64(s[8:], flags)
		le.PutUint64(s[24:], off)
		le.PutUint64(s[32:], size)
		le.PutUint64(s[48:], align)
	}
	section(1, 1, 1, 2, modOff, uint64(len(modinfo)), 1)   // SHT_PROGBITS, SHF_ALLOC
	section(2, 10, 3, 0, strOff, uint64(len(shstrtab)), 1) // SHT_STRTAB
	return b
}

// Livepatch returns the module a live patch for kernel and flavour with the
// given patch version would be, as patchverify.Metadata describes it: named
// LivepatchName(kernel, version), built for the release kernel-flavour (uname
// -r), with livepatch=Y and version=<version>.
func Livepatch(kernel, flavour string, version int) []byte {
	release := kernel
	if flavour != "" {
		release += "-" + flavour
	}
	return Module(
		"license=GPL",
		"livepatch=Y",
		"name="+LivepatchName(kernel, version),
		fmt.Sprintf("version=%d", version),
		"vermagic="+release+" SMP preempt mod_unload modversions ",
	)
}

// LivepatchName is livepatch_<kernel with . and - as _>_<version>, the
// module name (without ".ko") Livepatch gives.
func LivepatchName(kernel string, version int) string {
	return fmt.Sprintf("livepatch_%s_%d", strings.NewReplacer(".", "_", "-", "_").Replace(kernel), version)
}
