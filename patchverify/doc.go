// Package patchverify checks live patches the way the Linux kernel checks
// modules, and more strictly, before a client installs anything; and it
// signs and packages them for servers, tools and tests.
//
// A live-patch client is given a SHA-256 and a URL. Most clients want
// Download followed by VerifyPatch:
//
//	v, err := patchverify.NewVerifier(pinnedCerts)
//	f, err := patchverify.Download(ctx, httpClient, url, sha256hex, patchverify.WithRequireHTTPS())
//	defer f.Close()
//	p, err := patchverify.VerifyPatch(ctx, f, sha256hex, v)
//	// p.Module is the verified module; p.Metadata the metadata.
//
// VerifyPatch checks, in this order and trusting nothing before its check:
// the checksum (streamed, bounded, compared in constant time); the tarball
// (tar.bz2, tar.gz, tar.xz or tar, recognised by content; regular files only,
// no links, devices, unsafe or duplicate names; bounded entries and bytes);
// exactly one module, decompressed if it is a .ko.gz, .ko.xz or .ko.zst; and
// the module's appended signature.
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
// The xz and zstd formats are decompressed by running the xz and zstd
// programs (the standard library has no decoder for them), with their memory
// limited and their output bounded like every other stream.
package patchverify
