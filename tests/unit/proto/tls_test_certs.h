// Test certificates made at test time with OpenSSL's API: a CA, leaves it signs (any SANs, any
// validity window), written as PEM files into a temporary directory removed on destruction.
//
// Thread-safety: none; a fixture's setup owns it.
#pragma once

#include <openssl/evp.h>
#include <openssl/x509.h>

#include <string>
#include <vector>

namespace rc::tls::testing {

struct issued {
  X509* cert = nullptr;
  EVP_PKEY* key = nullptr;
  std::string cert_file;  // PEM
  std::string key_file;   // PEM
};

class cert_factory {
 public:
  cert_factory();
  ~cert_factory();
  cert_factory(const cert_factory&) = delete;
  cert_factory& operator=(const cert_factory&) = delete;

  // A self-signed CA (basicConstraints CA:TRUE, keyCertSign).
  const issued& make_ca(const std::string& file_name, const std::string& common_name);
  // A leaf signed by `issuer` (or self-signed when issuer is nullptr) with subjectAltName `sans`
  // such as {"DNS:localhost", "IP:127.0.0.1"}, valid from now + not_before_s to now + not_after_s.
  const issued& make_leaf(const std::string& file_name, const issued* issuer,
                          const std::vector<std::string>& sans, long not_before_s = -3600,
                          long not_after_s = 86400);
  // Writes `text` to a file in the directory and returns its path.
  std::string write_file(const std::string& file_name, const std::string& text) const;
  const std::string& dir() const { return dir_; }

 private:
  issued& make(const std::string& file_name, const std::string& common_name, const issued* issuer,
               const std::vector<std::string>& extensions, long not_before_s, long not_after_s);

  std::string dir_;
  std::vector<issued*> issued_;
  long serial_ = 1;
};

}  // namespace rc::tls::testing
