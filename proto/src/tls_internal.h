// Helpers shared by the TLS codec's files (proto/tls.h). Not part of the public interface.
//
// Thread-safety: operate on the calling thread's OpenSSL error queue only.
#pragma once

#include <string>

namespace rc::tls {

// "<what>: <reason of the first queued OpenSSL error>", or just `what` when the queue is empty.
// Clears the calling thread's error queue.
std::string openssl_error_text(const char* what);

}  // namespace rc::tls
