#include "grouposcore/pending.h"

namespace acekdc::grouposcore {

void PendingMessages::drop_front() {
  bytes_ -= items_.front().datagram.size();
  if (items_.front().reason == Error::kUnknownGroupId) --num_unknown_group_;
  items_.pop_front();
  ++dropped_;
}

bool PendingMessages::keep(ByteView datagram, const coap::Address& from, TimePoint now, Error reason) {
  if (!keeps_for(reason) || datagram.size() > limits_.max_bytes || limits_.max_messages == 0) return false;
  expire(now);
  while (!items_.empty() &&
         (items_.size() >= limits_.max_messages || bytes_ + datagram.size() > limits_.max_bytes)) {
    drop_front();
  }
  items_.push_back(Item{Bytes(datagram.begin(), datagram.end()), from, now, reason});
  bytes_ += datagram.size();
  if (reason == Error::kUnknownGroupId) ++num_unknown_group_;
  return true;
}

void PendingMessages::expire(TimePoint now) {
  while (!items_.empty() && now - items_.front().received > limits_.max_age) drop_front();
}

size_t PendingMessages::retry(TimePoint now,
                              const std::function<bool(ByteView datagram, const coap::Address& from)>& fn) {
  expire(now);
  size_t done = 0;
  std::deque<Item> keep_items;
  size_t keep_bytes = 0, keep_unknown = 0;
  for (auto& item : items_) {
    if (fn(item.datagram, item.from)) {
      ++done;
      continue;
    }
    keep_bytes += item.datagram.size();
    if (item.reason == Error::kUnknownGroupId) ++keep_unknown;
    keep_items.push_back(std::move(item));
  }
  items_ = std::move(keep_items);
  bytes_ = keep_bytes;
  num_unknown_group_ = keep_unknown;
  return done;
}

}  // namespace acekdc::grouposcore
