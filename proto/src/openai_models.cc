#include "proto/openai_models.h"

#include "proto/json_writer.h"

namespace rc::openai {

namespace {

void write_entry(json::writer& w, const model_entry& m) {
  w.begin_object();
  w.string_member("id", m.id);
  w.string_member("object", "model");
  w.int64_member("created", m.created);
  w.string_member("owned_by", m.owned_by);
  w.end_object();
}

}  // namespace

void write_model_list(byte_buffer& out, std::span<const model_entry> models) {
  json::writer w(out);
  w.begin_object();
  w.string_member("object", "list");
  w.key("data");
  w.begin_array();
  for (const model_entry& m : models) write_entry(w, m);
  w.end_array();
  w.end_object();
}

void write_model(byte_buffer& out, const model_entry& m) {
  json::writer w(out);
  write_entry(w, m);
}

}  // namespace rc::openai
