// Package tlsconfig is part of lpsec. Its documentation is filled in as the package lands.
package tlsconfig
