// PLACEHOLDER copy of the frozen interface (I10-SPEC.md, owner: remote); replaced on merge.
#pragma once

#include <memory>

#include "core/unique_function.h"
#include "server/engine.h"

namespace rc::server {
class shard_server;
using remote_start = unique_function<std::unique_ptr<engine_stream>(shard_server& home, engine_sink& sink)>;
std::unique_ptr<engine_stream> generate_on_shard(shard_server& self, unsigned home,
                                                 remote_start start, engine_sink& sink);
using remote_embed = unique_function<void(shard_server& home, unique_function<void(embedding_result&&)> done)>;
void embed_on_shard(shard_server& self, unsigned home, remote_embed start,
                    unique_function<void(embedding_result&&)> done);   // done on `self`'s shard
}
