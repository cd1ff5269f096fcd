/* mmbench leaderboard page: sortable tables, model filter, sticky columns, and the per-sample
   browser.  Text from results files is only ever set with textContent (never innerHTML).
   Sample files are <script> chunks that call mmbenchSamples(key, data): browsers block fetch()
   of file:// URLs, and the page must work opened from disk. */
(function(){
  'use strict';

  // ------------------------------------------------------------------ tables
  function key(td, num){
    var v = td.getAttribute('data-sort');
    if(num){ var x = v === null || v === '' ? NaN : parseFloat(v); return isNaN(x) ? null : x; }
    return (v === null ? td.textContent : v).toLowerCase();
  }
  function sortTable(table, th, col, asc){
    var heads = table.querySelectorAll('thead th');
    var num = th.getAttribute('data-type') === 'num';
    heads.forEach(function(h){ h.removeAttribute('aria-sort'); });
    th.setAttribute('aria-sort', asc ? 'ascending' : 'descending');
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function(a, b){
      var ka = key(a.cells[col], num), kb = key(b.cells[col], num);
      if(ka === null && kb === null) return 0;
      if(ka === null) return 1;            // missing values (unranked, cached) always last
      if(kb === null) return -1;
      var c = ka < kb ? -1 : ka > kb ? 1 : 0;
      return asc ? c : -c;
    });
    rows.forEach(function(r){ body.appendChild(r); });
    stick(table);
  }
  function stick(table){  // sticky rank, model and primary-metric columns
    var heads = table.querySelectorAll('thead th.stick');
    var left = 0;
    heads.forEach(function(th, i){
      var col = th.cellIndex;
      var cells = table.querySelectorAll('tr > :nth-child(' + (col + 1) + ')');
      cells.forEach(function(c){ c.style.left = left + 'px'; });
      left += th.getBoundingClientRect().width;
    });
  }
  document.querySelectorAll('table.lb').forEach(function(table){
    var heads = table.querySelectorAll('thead th');
    heads.forEach(function(th, col){
      th.addEventListener('click', function(){
        // first click: best first (the column's recorded direction); later clicks toggle
        var state = th.getAttribute('aria-sort');
        var asc = state ? state !== 'ascending' : th.getAttribute('data-first') !== 'desc';
        sortTable(table, th, col, asc);
      });
    });
    stick(table);
    table.tBodies[0].addEventListener('click', function(ev){
      var tr = ev.target.closest('tr');
      if(tr && tr.hasAttribute('data-group')) openBrowser(tr.getAttribute('data-group'), +tr.getAttribute('data-row'));
    });
  });
  function restick(){ document.querySelectorAll('table.lb').forEach(stick); }
  window.addEventListener('resize', restick);
  window.addEventListener('load', restick);
  document.querySelectorAll('input.filter').forEach(function(input){
    var table = document.getElementById(input.getAttribute('data-table'));
    input.addEventListener('input', function(){
      var q = input.value.toLowerCase();
      Array.prototype.forEach.call(table.tBodies[0].rows, function(r){
        r.hidden = q !== '' && r.getAttribute('data-model').toLowerCase().indexOf(q) === -1;
      });
    });
  });

  // ------------------------------------------------------------------ sample files
  var node = document.getElementById('samples-index');
  var INDEX = node ? JSON.parse(node.textContent) : {};
  var cache = {}, pending = {};
  window.mmbenchSamples = function(k, data){
    cache[k] = data;
    var p = pending[k];
    if(p){ delete pending[k]; p.resolve(data); }
  };
  function load(k, file){
    if(cache[k]) return Promise.resolve(cache[k]);
    if(pending[k]) return pending[k].promise;
    var d = {};
    d.promise = new Promise(function(res, rej){ d.resolve = res; d.reject = rej; });
    pending[k] = d;
    var s = document.createElement('script');
    s.src = file;
    s.onerror = function(){ if(pending[k]){ delete pending[k]; d.reject(new Error('could not load ' + file)); } };
    s.onload = function(){ if(pending[k]){ delete pending[k]; d.reject(new Error(file + ' did not register')); } };
    document.head.appendChild(s);
    return d.promise;
  }
  function sharedChunk(g, k){ return load(g + '/s' + k, 'samples/' + g + '/s' + k + '.js'); }
  function modelChunk(g, i, k){ return load(g + '/m' + i + '/' + k, 'samples/' + g + '/m' + i + '-' + k + '.js'); }
  function modelIdx(g, i){ return load(g + '/m' + i + '/idx', 'samples/' + g + '/m' + i + '-idx.js'); }
  function sharedIdx(g){ return load(g + '/s/idx', 'samples/' + g + '/s-idx.js'); }

  // ------------------------------------------------------------------ the sample browser
  var PAGE = 25;
  var sb = document.getElementById('sb');
  var st = null;  // {g, a, b, filter, cat, sort, page}
  function $(sel){ return sb.querySelector(sel); }
  function el(tag, cls, text){
    var x = document.createElement(tag);
    if(cls) x.className = cls;
    if(text !== undefined && text !== null) x.textContent = String(text);
    return x;
  }
  function option(select, value, text){ var o = el('option', null, text); o.value = value; select.appendChild(o); }
  function fmt(v){ return typeof v === 'number' ? (Math.abs(v) >= 1000 ? v.toFixed(0) : +v.toFixed(4) + '') : String(v); }

  function openBrowser(g, row){
    var info = INDEX[g];
    if(!info){ return; }
    st = {g: g, a: row, b: -1, filter: 'all', cat: '', sort: 'id', page: 0};
    $('h2').textContent = info.task + ' \u2014 ' + info.title;
    var a = $('#sb-a'), b = $('#sb-b'), c = $('#sb-cat'), f = $('#sb-filter');
    [a, b, c].forEach(function(s){ s.textContent = ''; });
    option(b, '-1', '(none)');
    info.models.forEach(function(m){
      if(!m.available) return;
      option(a, String(m.row), m.label);
      if(m.row !== row) option(b, String(m.row), m.label);
    });
    a.value = String(row);
    option(c, '', 'all categories');
    info.categories.forEach(function(x){ option(c, x, x); });
    c.disabled = info.categories.length === 0;
    f.value = 'all';
    $('#sb-sort').value = 'id';
    var notes = $('.notes');
    notes.textContent = '';
    info.notes.forEach(function(n){ notes.appendChild(el('p', 'note', n)); });
    if(info.prompt_template !== null && info.prompt_template !== undefined)
      notes.appendChild(el('p', 'meta', 'Prompt template: ' + info.prompt_template));
    syncFilters();
    sb.hidden = false;
    render();
  }
  function syncFilters(){
    var info = INDEX[st.g], f = $('#sb-filter');
    Array.prototype.forEach.call(f.options, function(o){
      var pair = o.value.indexOf('b-') >= 0 || o.value === 'disagree';
      o.disabled = (info.graded && o.value !== 'all' && o.value !== 'failed') || (pair && st.b < 0);
    });
    if(f.selectedOptions[0] && f.selectedOptions[0].disabled){ f.value = 'all'; st.filter = 'all'; }
  }
  function positions(){
    var info = INDEX[st.g];
    var need = [st.sort !== 'id' || st.filter !== 'all' ? modelIdx(st.g, st.a) : null,
                st.b >= 0 && /b-|disagree/.test(st.filter) ? modelIdx(st.g, st.b) : null,
                st.cat ? sharedIdx(st.g) : null];
    return Promise.all(need.map(function(p){ return p || Promise.resolve(null); })).then(function(r){
      var A = r[0], B = r[1], S = r[2], n = info.n;
      var mask = null;
      function and(list){
        var m = new Uint8Array(n);
        (list || []).forEach(function(j){ m[j] = 1; });
        if(mask){ for(var j = 0; j < n; j++){ mask[j] = mask[j] & m[j]; } } else { mask = m; }
      }
      var f = st.filter;
      if(f === 'right' || f === 'wrong' || f === 'failed') and(A[f]);
      else if(f === 'a-right-b-wrong'){ and(A.right); and(B.wrong); }
      else if(f === 'a-wrong-b-right'){ and(A.wrong); and(B.right); }
      else if(f === 'disagree'){  // both scored, one right and one wrong
        var mk = function(list){ var m = new Uint8Array(n); list.forEach(function(j){ m[j] = 1; }); return m; };
        var aR = mk(A.right), aW = mk(A.wrong), bR = mk(B.right), bW = mk(B.wrong), d = [];
        for(var j = 0; j < n; j++){ if((aR[j] && bW[j]) || (aW[j] && bR[j])) d.push(j); }
        and(d);
      }
      if(st.cat) and(S.categories[st.cat]);
      var order;
      if(st.sort === 'asc' || st.sort === 'desc'){
        order = A.asc.slice();
        if(st.sort === 'desc') order.reverse();
      } else {
        order = new Array(n);
        for(var i = 0; i < n; i++) order[i] = i;
      }
      return mask ? order.filter(function(j){ return mask[j]; }) : order;
    });
  }
  function cellFor(rec, info, label){
    var td = el('td');
    td.appendChild(el('div', 'sid', label));
    if(!rec){ td.appendChild(el('div', 'meta', 'no prediction for this sample')); return td; }
    var tag = rec.v === 1 ? 'right' : rec.v === 0 ? 'wrong' : rec.v === -1 ? 'failed' : null;
    var head = el('div');
    if(tag) head.appendChild(el('span', 'v ' + tag, tag));
    head.appendChild(el('span', 'pred', rec.p === null || rec.p === undefined ? '(no prediction)' :
      typeof rec.p === 'string' ? rec.p : JSON.stringify(rec.p)));
    td.appendChild(head);
    if(typeof rec.o === 'string' && rec.o !== rec.p) td.appendChild(el('div', 'raw', 'raw output: ' + rec.o));
    if(rec.e) td.appendChild(el('div', 'err', 'error: ' + rec.e));
    if(rec.q) td.appendChild(el('div', 'prompt', rec.q));
    var keys = Object.keys(rec.s || {});
    if(keys.length){
      td.appendChild(el('div', 'scores', keys.map(function(k){ return k + ' ' + fmt(rec.s[k]); }).join(' \u00b7 ')));
    }
    return td;
  }
  var THUMB = /^thumbs\/[0-9a-f]{16}\.(png|jpg)$/;
  function render(){
    var info = INDEX[st.g], token = st = Object.assign({}, st);
    var status = $('.status'), list = $('.list');
    status.textContent = 'loading\u2026';
    positions().then(function(pos){
      var start = st.page * PAGE, slice = pos.slice(start, start + PAGE);
      var chunks = {};
      slice.forEach(function(j){ chunks[Math.floor(j / info.chunk)] = 1; });
      var ks = Object.keys(chunks).map(Number), jobs = [];
      ks.forEach(function(k){
        jobs.push(sharedChunk(st.g, k), modelChunk(st.g, st.a, k));
        if(st.b >= 0) jobs.push(modelChunk(st.g, st.b, k));
      });
      return Promise.all(jobs).then(function(){ return [pos, slice]; });
    }).then(function(r){
      if(token !== st) return;  // a newer render started
      var pos = r[0], slice = r[1];
      var mA = info.models[st.a], mB = st.b >= 0 ? info.models[st.b] : null;
      var counts = mA.counts;
      status.textContent = (pos.length ? 'Showing ' + (st.page * PAGE + 1) + '\u2013' + (st.page * PAGE + slice.length) +
        ' of ' + pos.length : 'No samples match') + ' \u00b7 ' + mA.label + ': ' + counts.right + ' right, ' +
        counts.wrong + ' wrong, ' + counts.failed + ' failed of ' + mA.n;
      $('#sb-prev').disabled = st.page === 0;
      $('#sb-next').disabled = (st.page + 1) * PAGE >= pos.length;
      list.textContent = '';
      var table = el('table', 'samples'), head = el('tr');
      ['image', 'sample', mA.label].concat(mB ? [mB.label] : []).forEach(function(h){ head.appendChild(el('th', null, h)); });
      var thead = el('thead'); thead.appendChild(head); table.appendChild(thead);
      var body = el('tbody');
      slice.forEach(function(j){
        var k = Math.floor(j / info.chunk), o = j - k * info.chunk;
        var s = cache[st.g + '/s' + k][o];
        var tr = el('tr');
        tr.setAttribute('data-id', s[0]);
        var img = el('td');
        if(typeof s[2] === 'string' && THUMB.test(s[2])){
          var im = el('img'); im.src = s[2]; im.alt = 'image of sample ' + s[0]; img.appendChild(im);
        } else { img.appendChild(el('span', 'meta', 'no image')); }
        tr.appendChild(img);
        var sd = el('td');
        sd.appendChild(el('div', 'sid', 'id ' + s[0] + (s[1] ? ' \u00b7 ' + s[1] : '')));
        if(s[3] !== null && s[3] !== undefined) sd.appendChild(el('div', 'prompt', s[3]));
        if(s[4] && s[4].length) sd.appendChild(el('div', 'refs', 'references: ' + s[4].join(' | ')));
        tr.appendChild(sd);
        tr.appendChild(cellFor(cache[st.g + '/m' + st.a + '/' + k][o], info, mA.label));
        if(mB) tr.appendChild(cellFor(cache[st.g + '/m' + st.b + '/' + k][o], info, mB.label));
        body.appendChild(tr);
      });
      table.appendChild(body);
      list.appendChild(table);
      sb.setAttribute('data-ready', String(Date.now()));
    }).catch(function(err){
      status.textContent = 'Could not load the samples: ' + err.message;
      sb.setAttribute('data-ready', 'error');
    });
  }
  if(sb){
    function change(){
      st.a = +$('#sb-a').value; st.b = +$('#sb-b').value;
      if(st.b === st.a) { st.b = -1; $('#sb-b').value = '-1'; }
      syncFilters();
      st.filter = $('#sb-filter').value; st.cat = $('#sb-cat').value; st.sort = $('#sb-sort').value; st.page = 0;
      render();
    }
    ['#sb-a', '#sb-b', '#sb-filter', '#sb-cat', '#sb-sort'].forEach(function(s){ $(s).addEventListener('change', change); });
    $('#sb-prev').addEventListener('click', function(){ st.page = Math.max(0, st.page - 1); render(); });
    $('#sb-next').addEventListener('click', function(){ st.page += 1; render(); });
    $('#sb-close').addEventListener('click', function(){ sb.hidden = true; });
    document.addEventListener('keydown', function(ev){ if(ev.key === 'Escape') sb.hidden = true; });
  }
  window.mmbenchOpenSamples = openBrowser;
})();
