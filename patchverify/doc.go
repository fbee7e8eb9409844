// Package patchverify checks live patches the way the Linux kernel checks
// modules, and more strictly, before a client installs anything; and it
// signs and packages them for servers, tools and tests.
//
// A live-patch client is given a SHA-256 and a URL. Most clients want
// Download followed by VerifyPatch, for their kernel and against what they
// applied before, then RecordApplied once the patch is applied:
//
//	v, err := patchverify.NewVerifier(pinnedCerts)
//	state, err := patchverify.OpenFileState("/var/lib/client/applied.json")
//	f, err := patchverify.Download(ctx, httpClient, url, sha256hex, patchverify.WithRequireHTTPS())
//	defer f.Close()
//	p, err := patchverify.VerifyPatch(ctx, f, sha256hex, v,
//		patchverify.WithKernelRelease(uname), patchverify.WithAppliedState(state))
//	// p.Module is the verified module; p.Metadata the metadata, bound to it.
//	// ... apply p.Module ...
//	err = p.RecordApplied(ctx)
//
// VerifyPatch checks, in this order and trusting nothing before its check:
// the checksum (streamed, bounded, compared in constant time); the tarball
// (tar.bz2, tar.gz, tar.xz, tar.zst or tar, recognised by content; regular
// files only, no links, devices, unsafe or duplicate names, nothing on the
// module's extracted path; bounded entries and bytes); exactly one module,
// decompressed if it is a .ko.gz, .ko.xz or .ko.zst; the module's appended
// signature; then that metadata.json says what the signed module's .modinfo
// says (kernel release = vermagic's, module name, version where the module
// has one), and, as options ask, that the module is a live patch
// (livepatch=Y), is for the running kernel, and is newer than the applied
// one. A server's upload check calls the same VerifyPatch, so that whatever
// a server accepts, every client for that kernel can install.
//
// Memory: given a reader that can seek (an *os.File such as Download
// returns, a bytes.Reader), VerifyPatch never holds the compressed tarball:
// it hashes it in a first pass, then reads it again through the
// decompressor while hashing it a second time, and refuses it with
// ErrChecksumMismatch if that second hash or length differs (the file
// changed between the passes). Any other reader (a pipe, an HTTP body) is
// held in memory in 256 KiB chunks, at most WithMaxPatchSize, each let go as
// the tarball reader passes it. Either way VerifyPatch holds each file of the
// tarball, allocated once from its tar header (at most WithMaxFileSize each,
// WithMaxUnpackedSize together): that is Patch.Module and Patch.Files, what it
// returns. A compressed module (.ko.gz, .ko.xz, .ko.zst) adds its
// decompressed copy (at most WithMaxFileSize, sized from the gzip trailer,
// zstd frame header or xz index) while the compressed one is alive, and a
// .tar.xz is read into memory whole (at most WithMaxPatchSize) because its
// dictionary sizes are checked from the stream's end. The decoders add
// their own state: up to 64 MiB of xz dictionary (checked before decoding)
// or zstd window. So from a file, a .ko in a tar, tar.gz or tar.bz2 costs
// about one copy of the tarball's contents plus 64 KiB of buffers: 17.0 MB
// allocated for a 16 MiB module, 33.7 MB before; a 16 MiB .ko.xz, 50.8 MB
// with the xz decoder's 8 MiB dictionary (BenchmarkVerifyPatchMemory).
// The worst case, for hostile input within the bounds, is
// WithMaxUnpackedSize of files plus WithMaxFileSize of decompressed module
// plus 64 MiB of decoder state, plus WithMaxPatchSize for a .tar.xz or a
// reader that cannot seek: 256 MiB with the defaults from a file.
//
// Module signatures use the kernel's format: module, detached PKCS#7
// SignedData, 12-byte struct module_signature, "~Module signature appended~\n".
// A Verifier trusts only the certificates it was given: certificates inside a
// signature are ignored, and the signer is found by issuer and serial number
// or by subject key identifier (sign-file -k). Like the kernel it does not
// check validity dates unless WithValidityAt asks it to. Its default policy,
// PolicyLivepatch, accepts SHA-512 with RSA keys of at least 3072 bits;
// PolicyKernel accepts what distribution kernels accept.
//
// SignModule produces what the kernel's scripts/sign-file produces, byte for
// byte, and BuildPatch packages a signed module with its metadata.
//
// Every decoder runs in process and is fuzzed: gzip and bzip2 from the
// standard library, xz from github.com/ulikunitz/xz and zstd from
// github.com/klauspost/compress/zstd, each bounded like every other stream.
//
// Options are of one type, Option; each says which functions accept it,
// and misuse is an error wrapping ErrInvalidOption.
package patchverify
