// Expected<T, E>: a value or an error, in the spirit of C++23 std::expected
// (not available in the C++20 toolchain we target). Libraries return errors as
// values; no exceptions cross a library boundary.
#pragma once

#include <cassert>
#include <type_traits>
#include <utility>
#include <variant>

namespace acekdc {

template <class E>
struct Unexpected {
  E error;
};

// unexpected(e) makes an error result: `return unexpected(Error::kFoo);`.
template <class E>
Unexpected<std::decay_t<E>> unexpected(E&& e) {
  return {std::forward<E>(e)};
}

template <class T, class E>
class [[nodiscard]] Expected {
 public:
  Expected() requires std::is_default_constructible_v<T> : v_(std::in_place_index<0>) {}
  Expected(const T& v) : v_(std::in_place_index<0>, v) {}
  Expected(T&& v) : v_(std::in_place_index<0>, std::move(v)) {}
  template <class U>
    requires(std::is_constructible_v<T, U&&> && !std::is_same_v<std::decay_t<U>, Expected> &&
             !std::is_same_v<std::decay_t<U>, T>)
  Expected(U&& v) : v_(std::in_place_index<0>, std::forward<U>(v)) {}
  template <class G>
  Expected(Unexpected<G> u) : v_(std::in_place_index<1>, E(std::move(u.error))) {}

  bool has_value() const { return v_.index() == 0; }
  explicit operator bool() const { return has_value(); }

  T& value() & { assert(has_value()); return std::get<0>(v_); }
  const T& value() const& { assert(has_value()); return std::get<0>(v_); }
  T&& value() && { assert(has_value()); return std::get<0>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T&& operator*() && { return std::move(*this).value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  const E& error() const { assert(!has_value()); return std::get<1>(v_); }
  template <class U>
  T value_or(U&& d) const& { return has_value() ? value() : T(std::forward<U>(d)); }

 private:
  std::variant<T, E> v_;
};

template <class E>
class [[nodiscard]] Expected<void, E> {
 public:
  Expected() = default;
  template <class G>
  Expected(Unexpected<G> u) : err_(E(std::move(u.error))), ok_(false) {}
  bool has_value() const { return ok_; }
  explicit operator bool() const { return ok_; }
  void value() const { assert(ok_); }
  const E& error() const { assert(!ok_); return err_; }

 private:
  E err_{};
  bool ok_ = true;
};

}  // namespace acekdc

// TRY(expr): evaluate an Expected; on error return its error from the enclosing
// function (which must return an Expected with a compatible error type).
#define ACEKDC_TRY(expr)                                              \
  do {                                                                \
    auto&& acekdc_try_r_ = (expr);                                    \
    if (!acekdc_try_r_) return ::acekdc::unexpected(acekdc_try_r_.error()); \
  } while (0)
