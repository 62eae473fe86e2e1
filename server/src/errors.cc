#include "server/errors.h"

#include "proto/json_writer.h"

namespace rc::server {

void write_error_body(byte_buffer& out, std::string_view message, std::string_view type,
                      std::string_view param, std::string_view code) {
  json::writer w(out);
  w.begin_object();
  w.key("error");
  w.begin_object();
  w.key("message");
  w.string(message);
  w.key("type");
  w.string(type);
  w.key("param");
  if (param.empty()) {
    w.null();
  } else {
    w.string(param);
  }
  w.key("code");
  if (code.empty()) {
    w.null();
  } else {
    w.string(code);
  }
  w.end_object();
  w.end_object();
}

}  // namespace rc::server
