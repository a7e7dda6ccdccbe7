// SPDX-License-Identifier: MIT
//
// The project's one C++ translation unit: toml++ parses the TOML document
// and this file turns it into a cJSON tree, telling config.c through a
// callback where every item came from. Everything after this is C.
//
// No exception may cross into C: config_toml_parse() catches all of them,
// and cJSON subtrees under construction are held by unique_ptr so that an
// exception thrown half way through leaks nothing.

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>
#include <sstream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

// toml++ 3.3 checks its parser's preconditions with TOML_ASSERT, and some
// malformed documents break them ("a = [1,}", "[[[1]]]"): assert() would
// abort the daemon, and with NDEBUG the check becomes an assumption that
// the parser then runs past. Turned into an exception, it is caught below
// like any parse error. NDEBUG is dropped so that the checks stay on in
// release builds; nothing else in this file uses assert().
//
// A few checks sit in noexcept functions of toml++'s UTF-8 reader; they
// guard its own invariants, not the input, and there a failure still ends
// in std::terminate().
namespace m2m_toml {
struct assert_failure {
	const char *expr;
};
[[noreturn]] void assert_failed(const char *expr);
} // namespace m2m_toml
#undef NDEBUG
#define TOML_ASSERT(expr) ((expr) ? static_cast<void>(0) : m2m_toml::assert_failed(#expr))

#include <toml++/toml.h>

#include "config-toml.h"

[[noreturn]] void m2m_toml::assert_failed(const char *expr)
{
	throw assert_failure{ expr };
}

namespace {

struct cjson_deleter {
	void operator()(cJSON *item) const noexcept { cJSON_Delete(item); }
};
using cjson_ptr = std::unique_ptr<cJSON, cjson_deleter>;

// toml++ already limits arrays and inline tables to 256 levels, but table
// headers and dotted keys ("a.b.c.d...") nest without limit. cJSON and the
// walks in config.c recurse, so the depth of the tree is bounded here; no
// real configuration comes anywhere near it.
constexpr unsigned max_depth = 128;

// toml++ itself recurses once per level while parsing, so a file of a few
// megabytes of "a.a.a..." overflows the stack before the converter could
// refuse it. nesting_scan() refuses such files before toml++ sees them.
// Its estimate exceeds the real depth by at most one for a valid document,
// so with twice max_depth here it never refuses what the converter would
// accept, and it bounds toml++'s depth to a few times this.
constexpr unsigned scan_max_depth = 2 * max_depth;

// Where nesting_scan() gave up: the byte offset, or npos when it did not.
//
// It follows the document's brackets and counts the dots of dotted keys
// outside strings and comments. The estimate at any point is the number
// of open brackets, plus the dots of the keys that opened them, plus the
// dots seen since the last separator. Only keys have many dots: a float or
// a time has one.
size_t nesting_scan(std::string_view text)
{
	std::vector<unsigned> stack; // dots of the key before each open bracket
	unsigned acc = 0, seg_dots = 0, key_dots = 0;
	size_t i = 0, n = text.size();

	auto skip_to = [&](std::string_view end, bool escapes) {
		while (i < n) {
			if (escapes && text[i] == '\\') {
				i += 2;
				continue;
			}
			if (text.compare(i, end.size(), end) == 0) {
				i += end.size();
				return;
			}
			// Single-line strings end at the line; toml++ will say why.
			if (end.size() == 1 && text[i] == '\n')
				return;
			i++;
		}
	};

	while (i < n) {
		char ch = text[i];

		switch (ch) {
		case '#':
			while (i < n && text[i] != '\n')
				i++;
			continue;
		case '"':
		case '\'': {
			bool multi = text.compare(i, 3, ch == '"' ? "\"\"\"" : "'''") == 0;
			std::string_view end = multi ? text.substr(i, 3) : text.substr(i, 1);

			i += end.size();
			skip_to(end, ch == '"');
			continue;
		}
		case '.':
			seg_dots++;
			break;
		case '=':
			key_dots = seg_dots;
			seg_dots = 0;
			break;
		case '[':
		case '{':
			stack.push_back(key_dots);
			acc += key_dots;
			key_dots = seg_dots = 0;
			break;
		case ']':
		case '}':
			if (!stack.empty()) {
				acc -= stack.back();
				stack.pop_back();
			}
			key_dots = seg_dots = 0;
			break;
		case ',':
		case '\n':
			key_dots = seg_dots = 0;
			break;
		default:
			break;
		}
		if (stack.size() + acc + seg_dots > scan_max_depth)
			return i;
		i++;
	}
	return std::string_view::npos;
}

// A conversion failure with its errno and its one-line message.
struct convert_error {
	int err;
	std::string msg;
};

// Keys made of these characters print bare in paths; any other key is
// quoted the way TOML would write it, so a path stays unambiguous.
bool is_bare_key(std::string_view k)
{
	if (k.empty())
		return false;
	for (char ch : k) {
		bool ok = (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
		          (ch >= '0' && ch <= '9') || ch == '_' || ch == '-';
		if (!ok)
			return false;
	}
	return true;
}

void append_quoted(std::string &out, std::string_view s)
{
	out += '"';
	for (char ch : s) {
		unsigned char u = static_cast<unsigned char>(ch);
		if (ch == '"' || ch == '\\') {
			out += '\\';
			out += ch;
		} else if (u < 0x20 || u == 0x7f) {
			char buf[8];
			std::snprintf(buf, sizeof(buf), "\\u%04x", u);
			out += buf;
		} else {
			out += ch;
		}
	}
	out += '"';
}

void append_key(std::string &path, std::string_view key)
{
	if (!path.empty())
		path += '.';
	if (is_bare_key(key))
		path += key;
	else
		append_quoted(path, key);
}

// Kept on one line whatever toml++ puts in its descriptions.
std::string one_line(std::string s)
{
	std::replace(s.begin(), s.end(), '\n', ' ');
	std::replace(s.begin(), s.end(), '\r', ' ');
	return s;
}

class converter {
public:
	converter(std::string_view name, config_toml_record_fn record, void *userdata)
		: name_(name), record_(record), userdata_(userdata)
	{
	}

	cjson_ptr convert(const toml::node &node, std::string &path, uint32_t line,
	                  unsigned depth)
	{
		switch (node.type()) {
		case toml::node_type::table:
			return convert_table(*node.as_table(), path, line, depth);
		case toml::node_type::array:
			return convert_array(*node.as_array(), path, line, depth);
		case toml::node_type::string: {
			const std::string &s = node.as_string()->get();
			// cJSON strings end at the first NUL; silently cutting the
			// value there would change what the user wrote.
			if (s.find('\0') != std::string::npos)
				fail(-EINVAL, path, line,
				     "a string cannot contain a NUL character (\\u0000)");
			return make(cJSON_CreateString(s.c_str()), path, line,
			            CONFIG_TOML_STRING);
		}
		case toml::node_type::integer: {
			int64_t v = node.as_integer()->get();
			return make(cJSON_CreateNumber(static_cast<double>(v)), path, line,
			            CONFIG_TOML_INTEGER, v);
		}
		case toml::node_type::floating_point:
			return make(cJSON_CreateNumber(node.as_floating_point()->get()), path,
			            line, CONFIG_TOML_FLOAT);
		case toml::node_type::boolean:
			return make(cJSON_CreateBool(node.as_boolean()->get()), path, line,
			            CONFIG_TOML_BOOLEAN);
		case toml::node_type::date:
			return make_text(node.as_date()->get(), path, line, CONFIG_TOML_DATE);
		case toml::node_type::time:
			return make_text(node.as_time()->get(), path, line, CONFIG_TOML_TIME);
		case toml::node_type::date_time:
			return make_text(node.as_date_time()->get(), path, line,
			                 CONFIG_TOML_DATETIME);
		case toml::node_type::none:
			break;
		}
		fail(-EINVAL, path, line, "unsupported TOML value");
	}

private:
	[[noreturn]] void fail(int err, const std::string &path, uint32_t line,
	                       std::string_view msg) const
	{
		std::string s(name_);
		if (line > 0)
			s += ':' + std::to_string(line);
		// Only a pathological document has a path this long; its head is
		// enough to find the place.
		if (path.size() > 200)
			s += ": " + path.substr(0, 200) + "...";
		else if (!path.empty())
			s += ": " + path;
		s += ": ";
		s += msg;
		throw convert_error{ err, one_line(std::move(s)) };
	}

	cjson_ptr make(cJSON *raw, const std::string &path, uint32_t line,
	               config_toml_type type, int64_t ival = 0)
	{
		cjson_ptr item(raw);
		if (!item)
			throw std::bad_alloc();
		int r = record_(userdata_, item.get(), line, type, ival, path.c_str());
		if (r < 0)
			fail(r, path, line, std::strerror(-r));
		return item;
	}

	// Dates and times keep TOML's own spelling ("1979-05-27T07:32:00Z"),
	// which is what toml++ prints.
	template <typename T>
	cjson_ptr make_text(const T &value, const std::string &path, uint32_t line,
	                    config_toml_type type)
	{
		std::ostringstream os;
		os << value;
		return make(cJSON_CreateString(os.str().c_str()), path, line, type);
	}

	void check_depth(const std::string &path, uint32_t line, unsigned depth) const
	{
		if (depth > max_depth)
			fail(-EINVAL, path, line,
			     "tables and arrays nest deeper than " + std::to_string(max_depth) +
			             " levels");
	}

	cjson_ptr convert_table(const toml::table &table, std::string &path, uint32_t line,
	                        unsigned depth)
	{
		check_depth(path, line, depth);
		cjson_ptr obj = make(cJSON_CreateObject(), path, line, CONFIG_TOML_TABLE);

		// toml::table is a sorted map; the document's order is the order
		// of the keys' positions, and users expect to see it again (in
		// --check output, in plugin sections).
		std::vector<std::pair<const toml::key *, const toml::node *>> kids;
		kids.reserve(table.size());
		for (auto &&[key, value] : table)
			kids.emplace_back(&key, &value);
		std::stable_sort(kids.begin(), kids.end(), [](const auto &a, const auto &b) {
			const toml::source_position &pa = a.first->source().begin;
			const toml::source_position &pb = b.first->source().begin;
			return pa.line != pb.line ? pa.line < pb.line : pa.column < pb.column;
		});

		for (const auto &[key, value] : kids) {
			const std::string k(key->str());
			size_t len = path.size();
			uint32_t kline = value->source().begin.line;

			// The value's line is where the user wrote it; implicitly
			// created tables have none, so their key's line stands in.
			if (kline == 0)
				kline = key->source().begin.line;
			if (kline == 0)
				kline = line;
			append_key(path, k);
			if (k.find('\0') != std::string::npos)
				fail(-EINVAL, path, kline,
				     "a key cannot contain a NUL character (\\u0000)");
			cjson_ptr child = convert(*value, path, kline, depth + 1);
			path.resize(len);
			if (!cJSON_AddItemToObject(obj.get(), k.c_str(), child.get()))
				throw std::bad_alloc();
			child.release();
		}
		return obj;
	}

	cjson_ptr convert_array(const toml::array &array, std::string &path, uint32_t line,
	                        unsigned depth)
	{
		check_depth(path, line, depth);
		cjson_ptr arr = make(cJSON_CreateArray(), path, line, CONFIG_TOML_ARRAY);
		size_t i = 0;

		for (const toml::node &elem : array) {
			size_t len = path.size();
			uint32_t eline = elem.source().begin.line;

			path += '[' + std::to_string(i++) + ']';
			cjson_ptr child = convert(elem, path, eline > 0 ? eline : line, depth + 1);
			path.resize(len);
			if (!cJSON_AddItemToArray(arr.get(), child.get()))
				throw std::bad_alloc();
			child.release();
		}
		return arr;
	}

	std::string_view name_;
	config_toml_record_fn record_;
	void *userdata_;
};

// Messages are built here as std::string, which may throw std::bad_alloc;
// the caller catches that.
int parse_document(const char *text, size_t len, const char *name,
                   config_toml_record_fn record, void *userdata, cJSON **ret_root,
                   char **ret_error)
{
	std::string msg;
	int r;

	try {
		std::string_view doc_text(text, len);
		size_t deep = nesting_scan(doc_text);

		if (deep != std::string_view::npos) {
			size_t line = 1 + static_cast<size_t>(std::count(
				doc_text.begin(), doc_text.begin() + static_cast<ptrdiff_t>(deep), '\n'));
			size_t nl = doc_text.rfind('\n', deep);
			size_t col = nl == std::string_view::npos ? deep + 1 : deep - nl;

			msg = std::string(name) + ':' + std::to_string(line) + ':' + std::to_string(col) +
			      ": tables and arrays nest deeper than " + std::to_string(max_depth) +
			      " levels";
			*ret_error = strdup(msg.c_str());
			return -EINVAL;
		}

		toml::table doc = toml::parse(std::string_view(text, len), std::string_view(name));
		converter conv(name, record, userdata);
		std::string path;
		cjson_ptr root = conv.convert(doc, path, 0, 0);

		*ret_root = root.release();
		return 0;
	} catch (const toml::parse_error &e) {
		const toml::source_position &pos = e.source().begin;

		msg = name;
		if (pos.line > 0) {
			msg += ':' + std::to_string(pos.line);
			if (pos.column > 0)
				msg += ':' + std::to_string(pos.column);
		}
		msg += ": ";
		msg += e.description();
		msg = one_line(std::move(msg));
		r = -EINVAL;
	} catch (const convert_error &e) {
		msg = e.msg;
		r = e.err;
	} catch (const m2m_toml::assert_failure &) {
		// toml++ lost track of the position here; the whole file is named.
		msg = std::string(name) + ": invalid TOML (for example a ',' or a bracket out of place)";
		r = -EINVAL;
	}
	*ret_error = strdup(msg.c_str());
	return r;
}

} // namespace

extern "C" int config_toml_parse(const char *text, size_t len, const char *name,
                                 config_toml_record_fn record, void *userdata,
                                 cJSON **ret_root, char **ret_error)
{
	*ret_error = nullptr;
	try {
		return parse_document(text, len, name, record, userdata, ret_root, ret_error);
	} catch (const std::bad_alloc &) {
		// config.c names the file: allocating a message here could fail
		// the same way.
		return -ENOMEM;
	} catch (...) {
		return -EIO;
	}
}
